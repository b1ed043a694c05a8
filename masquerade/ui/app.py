"""`masquerade ui`: the whole job in a browser (Gradio), one tab per stage: Faces, Train, Swap, Verify, Live.

Every button calls a function of `ui.session`, which calls the library exactly as the CLI does. A bad file
shows the CLI's one-line error in the tab's status box and the app keeps running. Training runs one job at
a time (a second start waits in Gradio's queue) and can be stopped and resumed; its preview grid and loss
curve refresh while it runs.
"""

from __future__ import annotations

import time
from pathlib import Path

import gradio as gr
import pandas as pd

from masquerade.core.errors import InputError, MasqueradeError, error_line
from masquerade.models import list_models
from masquerade.swap.blend import MODES as BLENDS
from masquerade.swap.color import MODES as COLORS
from masquerade.swap.pipeline import SwapOptions
from masquerade.ui import session as S

POLL_S = 2.0  # how often the Train tab refreshes while a run goes on
POLICY = (
    "Use only faces you have consent for. Every output is marked as synthetic (an invisible watermark, a "
    "metadata label and signed C2PA content credentials); the Verify tab shows it."
)


def _paths(files) -> list[str]:
    """Gradio gives a path, a list of paths, or None."""
    if files is None:
        return []
    return [str(f) for f in (files if isinstance(files, list) else [files])]


def _losses(ws: S.Workspace) -> pd.DataFrame:
    """Typed even when empty: an untyped empty frame makes the plot take the loss for a category."""
    rows = S.loss_rows(ws.model)
    return pd.DataFrame(
        {
            "iteration": pd.Series([r["iteration"] for r in rows], dtype="int64"),
            "loss": pd.Series([r["loss"] for r in rows], dtype="float64"),
            "series": pd.Series([r["series"] for r in rows], dtype="str"),
        }
    )


def build_app(ws: S.Workspace, credentials=None) -> gr.Blocks:
    """The app on workspace `ws`; `credentials` signs the outputs' C2PA manifests (None: the local key)."""
    run_holder: dict[str, S.TrainRun] = {}  # the current training run, for the stop button
    swap_defaults = SwapOptions()
    live = S.LiveSwapper(ws, time.perf_counter)

    with gr.Blocks(title="masquerade") as app:
        gr.Markdown(f"# masquerade\n{POLICY}")

        # -- Faces ------------------------------------------------------------------------------------
        with gr.Tab("Faces", id="faces"):
            gr.Markdown("Upload videos or photos of each person. Faces are found, aligned and kept per identity.")
            every = gr.Slider(1, 10, value=2, step=1, label="use every Nth video frame")
            sides = {}
            for side in S.SIDES:
                with gr.Column():
                    files = gr.File(
                        label=f"identity {side.upper()}: videos or images",
                        file_count="multiple",
                        elem_id=f"files_{side}",
                    )
                    button = gr.Button(f"Extract faces of {side.upper()}", elem_id=f"extract_{side}")
                    status = gr.Textbox(label=f"{side.upper()} status", lines=4, elem_id=f"faces_status_{side}")
                    gallery = gr.Gallery(label=f"faces of {side.upper()}", columns=8, height=260)
                    sides[side] = (files, button, status, gallery)

            def extractor(side: str):
                def do_extract(files, nth: float, progress=gr.Progress()):
                    def update(done: int, total: int | None, info: dict) -> None:
                        progress((done, total), desc=f"extracting {side.upper()}: {info.get('faces', 0)} faces")

                    try:
                        summary = S.extract_side(ws, side, _paths(files), int(nth), update)
                    except MasqueradeError as exc:
                        return error_line(exc), S.face_gallery(ws.faceset(side))
                    lines = S.faceset_lines(ws.faceset(side), summary)
                    return "\n".join(lines), S.face_gallery(ws.faceset(side))

                return do_extract

            for side, (files, button, status, gallery) in sides.items():
                button.click(
                    extractor(side),
                    [files, every],
                    [status, gallery],
                    concurrency_id="extract",
                    concurrency_limit=1,
                )
                app.load(
                    lambda side=side: ("\n".join(S.faceset_lines(ws.faceset(side))), S.face_gallery(ws.faceset(side))),
                    None,
                    [status, gallery],
                )

        # -- Train ------------------------------------------------------------------------------------
        with gr.Tab("Train", id="train"):
            gr.Markdown(
                "Train one model for both identities. Stop saves it; Start again resumes it. The grid's columns: "
                "A, A→A, A→B, B, B→B, B→A."
            )
            with gr.Row():
                model = gr.Dropdown(list_models(), value="lite", label="model (a new model only)")
                iterations = gr.Number(2500, precision=0, minimum=1, label="train up to iteration", elem_id="iters")
            with gr.Row():
                start = gr.Button("Start / resume", variant="primary", elem_id="train_start")
                stop = gr.Button("Stop", elem_id="train_stop")
            train_status = gr.Textbox(label="training status", lines=4, elem_id="train_status")
            with gr.Row():
                preview = gr.Image(label="preview", elem_id="train_preview", type="filepath")
                plot = gr.LinePlot(x="iteration", y="loss", color="series", label="loss", height=360)

            def do_train(name: str, upto: float):
                run = S.TrainRun(ws, name, int(upto))
                try:
                    run.start()
                except MasqueradeError as exc:
                    yield error_line(exc), S.latest_preview(ws.model), _losses(ws)
                    return
                run_holder["run"] = run
                while run.wait(POLL_S):
                    yield "\n".join(S.train_lines(run)), S.latest_preview(ws.model), _losses(ws)
                if run.error:
                    yield run.error, S.latest_preview(ws.model), _losses(ws)
                    return
                res = run.result
                lines = [
                    f"stopped ({res.stopped_by}) at iteration {res.iteration}: loss A {res.loss_a:.4f}, "
                    f"loss B {res.loss_b:.4f}, {res.samples_per_s:.0f} samples/s; the model is saved",
                    *S.quality_lines(ws.model),
                    *(f"warning: {w}" for w in res.warnings),
                ]
                yield "\n".join(lines), S.latest_preview(ws.model), _losses(ws)

            def do_stop() -> str:
                run = run_holder.get("run")
                if run is None or not run.wait(0):
                    return "no training is running"
                run.stop()
                return "stopping: saving the model"

            # one run at a time: a second start waits in the queue
            start.click(do_train, [model, iterations], [train_status, preview, plot], concurrency_limit=1)
            stop.click(do_stop, None, train_status, queue=False)
            app.load(
                lambda: ("\n".join(S.model_lines(ws.model)), S.latest_preview(ws.model), _losses(ws)),
                None,
                [train_status, preview, plot],
            )

        # -- Swap -------------------------------------------------------------------------------------
        with gr.Tab("Swap", id="swap"):
            gr.Markdown("Swap the faces of a video or image with the trained model. The output is marked and signed.")
            swap_in = gr.File(label="video or image to swap", elem_id="swap_input")
            with gr.Row():
                to = gr.Radio(["auto", "a", "b"], value=swap_defaults.to, label="render identity (auto: the other one)")
                color = gr.Dropdown(list(COLORS), value=swap_defaults.color, label="colour matching")
                blend = gr.Dropdown(list(BLENDS), value=swap_defaults.blend, label="blend")
                smooth = gr.Slider(0, 4, value=swap_defaults.smooth, step=0.25, label="landmark smoothing")
                end = gr.Textbox(label="stop at (seconds, 1:02 or 300f; empty: the whole video)", elem_id="swap_end")
            with gr.Row():
                one = gr.Button("Preview one frame", elem_id="swap_preview")
                full = gr.Button("Swap", variant="primary", elem_id="swap_run")
            swap_status = gr.Textbox(label="swap status", lines=3, elem_id="swap_status")
            before_after = gr.Image(label="before | after", type="filepath", elem_id="swap_before_after")
            with gr.Row():
                video_in = gr.Video(label="input", elem_id="video_in", interactive=False)
                video_out = gr.Video(label="output (marked)", elem_id="video_out", interactive=False)
            download = gr.File(label="download", elem_id="swap_download")
            choices = [swap_in, to, color, blend, smooth, end]

            def do_swap(upload, to_, color_, blend_, smooth_, end_, preview_only: bool, progress):
                opts = SwapOptions(to=to_, color=color_, blend=blend_, smooth=float(smooth_))

                def update(done: int, total: int | None, info: dict) -> None:
                    progress((done, total), desc="swapping")

                try:
                    if not _paths(upload):
                        raise InputError("input", "no video or image given")
                    rep, kept = S.swap_media(ws, _paths(upload)[0], opts, end_, preview_only, update, credentials)
                except MasqueradeError as exc:
                    return error_line(exc), None, None, None, None
                lines = [f"rendered identity {rep.rendered} ({rep.chosen_by})", *(rep.warnings or [])]
                if rep.previews:
                    return "\n".join(lines), rep.previews[0], gr.skip(), gr.skip(), gr.skip()
                lines.append(f"{rep.frames} frames, {rep.frames_swapped} with a swapped face")
                if rep.mark_check:
                    lines.append(f"watermark: {rep.mark_check}; metadata label: synthetic")
                if rep.credentials:
                    lines.append(f"content credentials: {rep.credentials}")
                image = Path(rep.output).suffix.lower() in S.IMAGE_EXTS
                return (
                    "\n".join(lines),
                    rep.output if image else gr.skip(),  # a video keeps its one-frame preview
                    None if image else str(kept),
                    None if image else rep.output,
                    rep.output,
                )

            def do_preview(upload, to_, color_, blend_, smooth_, end_, progress=gr.Progress()):
                return do_swap(upload, to_, color_, blend_, smooth_, end_, True, progress)

            def do_full(upload, to_, color_, blend_, smooth_, end_, progress=gr.Progress()):
                return do_swap(upload, to_, color_, blend_, smooth_, end_, False, progress)

            outs = [swap_status, before_after, video_in, video_out, download]
            one.click(do_preview, choices, outs, concurrency_id="swap")
            full.click(do_full, choices, outs, concurrency_id="swap")

        # -- Verify -----------------------------------------------------------------------------------
        with gr.Tab("Verify", id="verify"):
            gr.Markdown("Drop any video or image: does it carry masquerade's mark, which payload and which label?")
            verify_in = gr.File(label="file to check", elem_id="verify_input")
            check = gr.Button("Verify", variant="primary", elem_id="verify_run")
            verdict = gr.Textbox(label="result", lines=6, elem_id="verify_result")

            def do_verify(upload) -> str:
                try:
                    if not _paths(upload):
                        raise InputError("file", "no file given")
                    return "\n".join(S.verify_lines(_paths(upload)[0])[1])
                except MasqueradeError as exc:
                    return error_line(exc)

            check.click(do_verify, verify_in, verdict, concurrency_id="verify")

        # -- Live -------------------------------------------------------------------------------------
        with gr.Tab("Live", id="live"):
            gr.Markdown(
                "Your webcam, swapped as it streams (every frame marked). For a stream, a virtual camera or OBS, "
                "use `masquerade live`."
            )
            with gr.Row():
                cam = gr.Image(sources=["webcam"], streaming=True, label="webcam", elem_id="live_cam")
                cam_out = gr.Image(label="swapped (marked)", elem_id="live_out")
            latency = gr.Textbox(label="latency", elem_id="live_latency")

            def do_live(frame):
                if frame is None:
                    return None, ""
                try:
                    out, ms = live(frame)  # LiveSwapper serialises frames itself
                except MasqueradeError as exc:
                    return None, error_line(exc)
                return out, f"{ms:.0f} ms per frame (swap, mark)"

            cam.stream(do_live, cam, [cam_out, latency], stream_every=0.1, concurrency_limit=1)
    return app


def launch(
    workdir: str | Path,
    port: int = 7860,
    share: bool = False,
    max_upload_mb: int = 2048,
    credentials=None,
    block: bool = True,
) -> gr.Blocks:
    """Start the app on 127.0.0.1:`port` (a public gradio.live link only with `share`)."""
    ws = S.Workspace(Path(workdir).resolve())
    ws.root.mkdir(parents=True, exist_ok=True)
    app = build_app(ws, credentials)
    app.queue(default_concurrency_limit=1)
    app.launch(
        server_name="127.0.0.1",
        server_port=port,
        share=share,
        max_file_size=f"{max_upload_mb}mb",
        allowed_paths=[str(ws.root)],
        prevent_thread_lock=not block,
        quiet=not block,
    )
    return app
