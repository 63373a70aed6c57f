"""The Streamlit explorer (it talks to the store through `queries` only and never imports torch)."""
