"""The Streamlit explorer, `neurocypher app`: it reads the store through `neurocypher.queries` only,
compares models with `neurocypher.ingest.matching`, and imports the rest of the model side only to
rerun a closing live (`intervention`)."""
