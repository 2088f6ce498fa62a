"""The payload of a run step's job: which run, step and item it is for, and everything the step receives.

A store builds it when it releases the step, from what it keeps (the run's inputs, the parents' results, the
item), without decoding any of it: values stay as the serializer encoded them, framed as netstrings
(``<length>:<bytes>``, one after the other), which a Lua script builds as easily as Python. The consumer
decodes the values and binds them by the step's signature.

Fields, in order: the marker, the run id, the step, the item index (empty when the step is not mapped), the
encoded inputs, the item's encoded value (empty when not mapped), then each parent's name and result: ``=``
and the encoded result, or ``*`` and the packed list of its items' encoded results (a mapped parent).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

__all__ = ("MARKER", "StepCall", "pack", "unpack")

MARKER = b"tasker.step.1"


def pack(values: Iterable[bytes | str]) -> bytes:
    """``values`` as netstrings, one after the other."""
    parts: list[bytes] = []
    for value in values:
        data = value if isinstance(value, bytes) else value.encode()
        parts.append(b"%d:%b" % (len(data), data))
    return b"".join(parts)


def unpack(data: bytes) -> list[bytes]:
    """The values ``pack`` packed.

    Raises:
        ValueError: ``data`` is not a sequence of netstrings.
    """
    values: list[bytes] = []
    at = 0
    while at < len(data):
        colon = data.find(b":", at)
        length = data[at:colon]
        if colon < 0 or not length.isdigit():
            raise ValueError(f"not a netstring at byte {at}")
        start = colon + 1
        end = start + int(length)
        if end > len(data):
            raise ValueError(f"a netstring at byte {at} runs past the end")
        values.append(data[start:end])
        at = end
    return values


@dataclass(frozen=True, slots=True, kw_only=True)
class StepCall:
    """A step job's payload, its values still encoded.

    Attributes:
        run_id: the run's id.
        step: the step's name.
        item: for a mapped step, the item's index; ``None`` otherwise.
        inputs: the run's inputs (one encoded mapping).
        item_value: for a mapped step, the item's encoded value; ``None`` otherwise.
        parents: each parent's encoded result; a mapped parent's is a tuple, one per item in order.
    """

    run_id: str
    step: str
    item: int | None
    inputs: bytes
    item_value: bytes | None
    parents: Mapping[str, bytes | tuple[bytes, ...]]

    def pack(self) -> bytes:
        """The payload."""
        fields: list[bytes | str] = [MARKER, self.run_id, self.step, "" if self.item is None else str(self.item)]
        fields += [self.inputs, b"" if self.item_value is None else b"=" + self.item_value]
        for name, result in self.parents.items():
            fields += [name, b"=" + result if isinstance(result, bytes) else b"*" + pack(result)]
        return pack(fields)

    @classmethod
    def unpack(cls, payload: bytes) -> StepCall:
        """Read a payload ``pack`` made.

        Raises:
            ValueError: it is not a step job's payload.
        """
        fields = unpack(payload)
        if len(fields) < 6 or fields[0] != MARKER or len(fields) % 2:
            raise ValueError("not the payload of a workflow step's job")
        run_id, step, item, inputs, value = fields[1:6]
        parents: dict[str, bytes | tuple[bytes, ...]] = {}
        for name, result in zip(fields[6::2], fields[7::2], strict=True):
            if result[:1] == b"*":
                parents[name.decode()] = tuple(unpack(result[1:]))
            elif result[:1] == b"=":
                parents[name.decode()] = result[1:]
            else:
                raise ValueError(f"the result of parent {name!r} is framed wrong")
        return cls(
            run_id=run_id.decode(),
            step=step.decode(),
            item=int(item) if item else None,
            inputs=inputs,
            item_value=value[1:] if value else None,
            parents=parents,
        )
