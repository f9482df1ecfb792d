"""The base of every request model on the wire: unknown fields are ignored (clients send
extras), validation and cross-field checks live on the models themselves."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class WireModel(BaseModel):
    model_config = ConfigDict(extra="ignore")
