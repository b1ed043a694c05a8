"""Media I/O: frames in from videos, images and folders; video (with the source audio) and images out.

Nothing here knows about faces.
"""

from masquerade.media.reader import (
    Frame,
    MediaInfo,
    ReadStats,
    list_sources,
    probe,
    read_frames,
    read_image,
    sample_keyframes,
)
from masquerade.media.writer import VideoWriter, read_label, write_image

__all__ = [
    "Frame",
    "MediaInfo",
    "ReadStats",
    "VideoWriter",
    "list_sources",
    "probe",
    "read_frames",
    "read_image",
    "read_label",
    "sample_keyframes",
    "write_image",
]
