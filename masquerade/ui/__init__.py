"""`masquerade ui`: the Gradio app (app.py) over plain, Gradio-free functions (session.py)."""
