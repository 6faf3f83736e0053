"""A dated, editable table of batch prices (and optional enqueued-token limits) per model."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from core.errors import CoreError

SHIPPED_PRICES = Path(__file__).with_name("model_prices.toml")


@dataclass(frozen=True)
class ModelPrice:
    input_per_million: float
    output_per_million: float
    # The provider's per-model cap on tokens waiting in the batch queue (tier dependent, not
    # readable through the API). None: no cap known, send every batch at once.
    enqueued_token_limit: int | None = None


@dataclass(frozen=True)
class PriceTable:
    checked_on: str
    currency: str
    models: dict[str, ModelPrice]
    source: str

    def price_for(self, model: str) -> ModelPrice | None:
        """Exact name first, then the longest known prefix (``gpt-4.1-mini-2025-04-14``)."""
        if model in self.models:
            return self.models[model]
        matches = [name for name in self.models if model.startswith(name)]
        return self.models[max(matches, key=len)] if matches else None


def format_cost(amount: float | None, currency: str = "USD") -> str:
    """A cost as people read it: ``unknown`` without a price, ``free`` at zero (the local
    backend), cents to four places below one unit, two places above."""
    if amount is None:
        return "unknown"
    if amount == 0:
        return "free"
    return f"{amount:,.4f} {currency}" if amount < 1 else f"{amount:,.2f} {currency}"


def enqueued_limit(table: PriceTable, model: str) -> int | None:
    price = table.price_for(model)
    return price.enqueued_token_limit if price else None


def load_price_table(data_dir: Path | None = None) -> PriceTable:
    """The user's ``data/model_prices.toml`` if present, else the shipped table."""
    path = SHIPPED_PRICES
    if data_dir is not None and (data_dir / "model_prices.toml").is_file():
        path = data_dir / "model_prices.toml"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        models = {
            name: ModelPrice(
                float(entry["input"]),
                float(entry["output"]),
                int(entry["enqueued_token_limit"]) if entry.get("enqueued_token_limit") else None,
            )
            for name, entry in data.get("models", {}).items()
        }
    except (tomllib.TOMLDecodeError, KeyError, TypeError, ValueError) as exc:
        raise CoreError(f"Price table {path} is not valid: {exc}") from None
    return PriceTable(
        checked_on=str(data.get("checked_on", "unknown")),
        currency=str(data.get("currency", "USD")),
        models=models,
        source=str(path),
    )
