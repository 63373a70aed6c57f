"""`neurocypher app`: start the Streamlit explorer (the root command line is `neurocypher.cli`)."""

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from neurocypher.queries import connect

commands = typer.Typer()


@commands.command("app")
def run_app(
    port: Annotated[int, typer.Option()] = 8501,
    address: Annotated[str, typer.Option(help="interface to listen on (0.0.0.0 inside a container)")] = "127.0.0.1",
) -> None:
    """Start the Streamlit explorer (on 127.0.0.1 unless told otherwise)."""
    connect().close()  # starts the embedded server when needed
    main_page = Path(__file__).with_name("main.py")
    print(f"neurocypher app: http://{address}:{port}", flush=True)
    # this process becomes streamlit, so that a signal to it (Ctrl-C, a service manager) stops the app
    os.execv(
        sys.executable,
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            str(main_page),
            "--server.address",
            address,
            "--server.port",
            str(port),
            "--server.headless",
            "true",
            "--browser.gatherUsageStats",
            "false",
            "--global.developmentMode",
            "false",
            "--client.toolbarMode",
            "minimal",
        ],
    )
