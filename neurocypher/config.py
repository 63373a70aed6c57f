"""Configuration from the environment (and a `.env` file in the working directory)."""

import os
from dataclasses import dataclass
from pathlib import Path

from dotenv import find_dotenv, load_dotenv


@dataclass(frozen=True)
class Settings:
    neo4j_uri: str | None
    neo4j_user: str
    neo4j_password: str | None
    neo4j_database: str | None
    home: Path

    @property
    def backend(self) -> str:
        return "neo4j" if self.neo4j_uri else "falkordb"


def settings() -> Settings:
    """Read NEO4J_* and NEUROCYPHER_HOME; variables already set win over `.env`."""
    load_dotenv(find_dotenv(usecwd=True), override=False)
    env = os.environ
    return Settings(
        neo4j_uri=env.get("NEO4J_URI") or None,
        neo4j_user=env.get("NEO4J_USER") or env.get("NEO4J_USERNAME") or "neo4j",
        neo4j_password=env.get("NEO4J_PASSWORD"),
        neo4j_database=env.get("NEO4J_DATABASE") or None,
        home=Path(env.get("NEUROCYPHER_HOME") or Path.home() / ".neurocypher").expanduser(),
    )
