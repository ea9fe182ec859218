"""Read a W&B offline run's transaction log (`run-<id>.wandb`) record by record, as `wandb sync` does.

    log = read(Path("runs/20261126T0352Z-local/wandb/offline-run-20261126_035258-2yx8dez7/run-2yx8dez7.wandb"))
    log.exited, log.exit_code, log.run_id, log.history_rows, log.config["optim"]   # True, 0, '2yx8dez7', 12, {...}
    log.intact       # False while a writer is mid-record (a torn tail), or the file is cut short

The file is a LevelDB log (32 KiB blocks of chunks: crc32, length, type FULL/FIRST/MIDDLE/LAST) behind
a 7-byte header (`:W&B`, magic 0xBEE1, version 0); each record is wandb's own protobuf `Record`
(`wandb.proto.wandb_internal_pb2`). wandb 0.31 moved its Python reader into wandb-core (Go), so the
chunk framing is read here and every record is decoded with wandb's protobuf. A run is finished when
its log holds the `exit` record, the same test wandb's sync uses; file names say nothing.
"""

from __future__ import annotations

import json
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import DependencyError

HEADER = struct.Struct("<4sHB")   # ident, magic, version
CHUNK = struct.Struct("<IHB")     # crc32 of type byte + data, data length, chunk type
IDENT, MAGIC, VERSION = b":W&B", 0xBEE1, 0
BLOCK = 32768
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


class LogError(ValueError):
    """The file is not a W&B transaction log, or a chunk before its end fails its checksum."""


@dataclass
class RunLog:
    """What the agent and the gates need from one `.wandb` file."""

    path: Path
    run_id: str = ""
    entity: str = ""
    project: str = ""
    exited: bool = False               # the `exit` record is there: the run finished (any exit code)
    exit_code: int | None = None
    history_rows: int = 0              # `history` records: one per logged step
    records: int = 0
    intact: bool = True                # False: the last chunk is torn (being written, or the writer died mid-write)
    config: dict[str, Any] = field(default_factory=dict)  # the run config as recorded (nested keys merged)
    history: list[dict[str, Any]] = field(default_factory=list)  # each history row: {key: value}


def _protobuf() -> Any:
    try:
        from wandb.proto import wandb_internal_pb2
    except ImportError as exc:  # the project venv has wandb; a bare interpreter may not
        raise DependencyError("wandb", "reading W&B transaction logs", "pip install 'wandb>=0.31,<0.32'") from exc
    return wandb_internal_pb2


def chunks(data: bytes) -> tuple[list[bytes], bool]:
    """Reassembled record payloads, and whether the file ends on a whole record.

    A bad checksum, a short chunk or a FIRST without its LAST at the very end is a torn tail (a
    writer mid-flush, or one that died): `intact` is False. The same before the end is corruption.
    """
    if len(data) < HEADER.size:
        return [], False
    ident, magic, version = HEADER.unpack_from(data)
    if (ident, magic, version) != (IDENT, MAGIC, VERSION):
        raise LogError(f"not a W&B transaction log (header {data[:HEADER.size]!r})")
    payloads: list[bytes] = []
    pending: bytearray | None = None
    pos = HEADER.size
    while pos < len(data):
        room = BLOCK - pos % BLOCK
        if room < CHUNK.size:  # a block's zero trailer
            pos += room
            continue
        if pos + CHUNK.size > len(data):
            return payloads, False
        crc, length, kind = CHUNK.unpack_from(data, pos)
        end = pos + CHUNK.size + length
        if end > len(data):
            return payloads, False
        body = data[pos + CHUNK.size:end]
        if zlib.crc32(body, zlib.crc32(bytes([kind]))) & 0xFFFFFFFF != crc or kind not in (FULL, FIRST, MIDDLE, LAST):
            if end >= len(data):
                return payloads, False
            raise LogError(f"chunk at byte {pos} fails its checksum")
        pos = end
        if kind == FULL:
            payloads.append(body)
        elif kind == FIRST:
            pending = bytearray(body)
        elif pending is None:
            raise LogError(f"chunk at byte {pos - length - CHUNK.size} continues a record that never started")
        elif kind == MIDDLE:
            pending += body
        else:
            payloads.append(bytes(pending + body))
            pending = None
    return payloads, pending is None


def _set(config: dict[str, Any], nested_key: list[str], value: Any) -> None:
    for part in nested_key[:-1]:
        config = config.setdefault(part, {})
    config[nested_key[-1]] = value


def read(path: Path, keep_history: bool = False) -> RunLog:
    """Decode every whole record of `path`; `keep_history` also keeps each history row's values."""
    pb = _protobuf()
    payloads, intact = chunks(path.read_bytes())
    log = RunLog(path=path, intact=intact)
    for payload in payloads:
        record = pb.Record()
        record.ParseFromString(payload)
        log.records += 1
        kind = record.WhichOneof("record_type")
        if kind == "run":
            log.run_id, log.entity, log.project = record.run.run_id, record.run.entity, record.run.project
            for item in record.run.config.update:
                _set(log.config, list(item.nested_key) or [item.key], json.loads(item.value_json))
        elif kind == "config":
            for item in record.config.update:
                _set(log.config, list(item.nested_key) or [item.key], json.loads(item.value_json))
        elif kind == "history":
            log.history_rows += 1
            if keep_history:
                log.history.append({".".join(i.nested_key) or i.key: json.loads(i.value_json) for i in record.history.item})
        elif kind == "exit":
            log.exited, log.exit_code = True, record.exit.exit_code
    return log


def run_file(run_dir: Path) -> Path | None:
    """The `run-<id>.wandb` of an offline run folder (`offline-run-<time>-<id>/`), if it has one."""
    found = sorted(run_dir.glob("run-*.wandb"))
    return found[0] if found else None
