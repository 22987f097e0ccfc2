"""Fixtures shared by the whole suite: paths to the bundled real samples and an isolated workspace."""

import contextlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The repository's bundled real samples (see data/README.md for provenance)."""
    return DATA


@pytest.fixture(scope="session")
def taobao_csv() -> Path:
    """80k rows of Taobao UserBehavior, no header, with its real defects (truncated last line...)."""
    return DATA / "taobao_userbehavior" / "UserBehavior_sample.csv"


@pytest.fixture(scope="session")
def taobao_head_file(taobao_csv, tmp_path_factory):
    """``taobao_head_file(n)``: a file with the first ``n`` events of the Taobao sample (what a worker loads)."""
    made: dict[int, Path] = {}

    def head(n_events: int) -> Path:
        if n_events not in made:
            path = tmp_path_factory.mktemp("taobao-head") / f"taobao_head_{n_events}.csv"
            with open(taobao_csv, encoding="utf-8") as source:
                path.write_text("".join(line for _, line in zip(range(n_events), source)), encoding="utf-8")
            made[n_events] = path
        return made[n_events]
    return head


@dataclass(frozen=True)
class YeastGrid:
    """The small real experiment the Compare tests share: yeast_me2 (an imbalanced benchmark), a logistic
    regression, 3 strategies x 3 seeds on one stratified split (another ``base`` and ``strategies`` give
    another grid, as :func:`taobao_grid_home` does)."""

    base: Any
    strategies: tuple[str, ...] = ("none", "random_over", "class_weights")
    seeds: tuple[int, ...] = (0, 1, 2)

    def build(self, home, name: str):
        """Run every strategy x seed in the foreground into a store at ``home``; returns the store."""
        from recexp.spec import prepare_data
        from recexp.jobs import execute
        from recexp.runs import SQLiteRunStore

        store = SQLiteRunStore(home)
        data = prepare_data(self.base)
        experiment = store.create_experiment(name)
        for strategy in self.strategies:
            for seed in self.seeds:
                spec = replace(self.base, strategy=strategy, seed=seed, fingerprint=data[0].fingerprint)
                run = store.create_run(experiment.id, spec.to_dict(), name=spec.label(), status="running")
                execute(spec, store, run.id, data=data)
        return store


@pytest.fixture(scope="session")
def yeast_grid() -> YeastGrid:
    """The spec and builder of the shared yeast experiment (``yeast_grid.build(home, name)``)."""
    from recexp.spec import RunSpec

    return YeastGrid(RunSpec(source={"sample": "yeast_me2"}, task="table", split={"method": "stratified", "seed": 0},
                             model="logreg", train={"epochs": 2, "learning_rate": 0.05, "batch_size": 256,
                                                    "device": "cpu"}))


@pytest.fixture(scope="session")
def taobao_grid_home(tmp_path_factory) -> Path:
    """A workspace with one finished log-task experiment for the slice tests: the bundled Taobao sample's
    purchase task, a logistic regression (1 epoch), ``none`` and ``class_weights`` x 3 seeds (about 20 s), in
    the experiment ``"taobao purchase"``."""
    from recexp.spec import RunSpec

    home = tmp_path_factory.mktemp("taobao_grid_workspace")
    grid = YeastGrid(RunSpec(source={"sample": "taobao"}, task="purchase", model="logreg",
                             train={"epochs": 1, "learning_rate": 0.05, "batch_size": 1024, "device": "cpu"}),
                     strategies=("none", "class_weights"))
    grid.build(home, "taobao purchase")
    return home


@pytest.fixture(scope="session")
def retailrocket_csv() -> Path:
    """RetailRocket events of 1,500 visitors, header row, epoch-millisecond timestamps."""
    return DATA / "retailrocket" / "events_sample.csv"


@pytest.fixture(scope="session")
def criteo_csv() -> Path:
    """200 Criteo rows: a feature table with a `label` column."""
    return DATA / "criteo_sample" / "criteo_sample.csv"


class SmallDisk:
    """A tmpfs of its own, mounted in a test's folder: a real disk to fill up or to make read-only."""

    def __init__(self, path: Path):
        self.path = path

    def fill(self) -> Path:
        """Write a ballast file until the disk is full (ENOSPC); returns it (delete it to free the space)."""
        import errno

        ballast = self.path / "ballast"
        with open(ballast, "wb", buffering=0) as out:
            chunk = b"\0" * 65536
            try:
                while True:
                    out.write(chunk)
            except OSError as error:
                assert error.errno == errno.ENOSPC, error
            try:
                while True:                         # top up the last partial chunk
                    out.write(b"\0" * 512)
            except OSError:
                pass
        return ballast

    def remount(self, *options: str) -> None:
        """``remount("ro")`` makes the disk read-only, ``remount("rw")`` writable again."""
        import subprocess

        subprocess.run(["mount", "-o", ",".join(["remount", *options]), str(self.path)], check=True)


@pytest.fixture
def small_disk(tmp_path):
    """``small_disk("2m")``: a fresh tmpfs of that size (:class:`SmallDisk`); skips where mounting is not
    permitted (not root, or no mount namespace). Unmounted after the test."""
    import subprocess

    mounted: list[Path] = []

    def mount(size: str = "30m") -> SmallDisk:
        target = tmp_path / f"disk{len(mounted)}"
        target.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(target)],
                              capture_output=True, text=True)
        if done.returncode:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
        mounted.append(target)
        return SmallDisk(target)

    yield mount
    for target in reversed(mounted):
        subprocess.run(["umount", "-l", str(target)], capture_output=True)


#: A Taobao-layout header and rows whose behaviour column reads 浏览 / 收藏 / 加购 / 购买 (view, fav, cart, buy).
_CHINESE_ROWS = [f"{u},{u * 3},{'浏览收藏加购购买'[2 * (u % 4):2 * (u % 4) + 2]},{1511544070 + u}" for u in range(200)]
_HEADER = b"user_id,item_id,behavior_type,timestamp\n"


def _gzip_bomb(unpacked_mb: int) -> bytes:
    """A gzip file that unpacks to ``unpacked_mb`` MB of valid CSV: one 20 MB member compressed once and
    repeated (gzip allows members back to back), so its trailer states 20 MB whatever the total."""
    import gzip

    block = _HEADER + b"1,2,pv,1511544070\n" * (20_000_000 // 18)
    member = gzip.compress(block, compresslevel=9)
    return member * max(1, unpacked_mb // 20)


@pytest.fixture(scope="session")
def bad_inputs(tmp_path_factory, taobao_csv) -> dict[str, Path]:
    """Hostile and malformed files, built here (never downloaded): name -> path. See tests/fault_cases.md."""
    import gzip
    import os
    import zipfile

    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = tmp_path_factory.mktemp("bad-inputs")
    files: dict[str, Path] = {}

    def write(name: str, content: bytes) -> None:
        files[name] = folder / name
        files[name].write_bytes(content)

    write("gzip_bomb.csv.gz", _gzip_bomb(2000))                  # 2 GB of CSV in about 4 MB
    with zipfile.ZipFile(folder / "zip_bomb.zip", "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        with archive.open("events.csv", "w", force_zip64=True) as member:   # declares its 400 MB honestly
            member.write(_HEADER)
            for _ in range(20):
                member.write(b"1,2,pv,1511544070\n" * (20_000_000 // 18))
    files["zip_bomb.zip"] = folder / "zip_bomb.zip"
    with zipfile.ZipFile(folder / "zip_of_gzip_bomb.zip", "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("events.csv.gz", _gzip_bomb(1000))       # a member that is itself a bomb
    files["zip_of_gzip_bomb.zip"] = folder / "zip_of_gzip_bomb.zip"
    zeros = pa.array(np.zeros(3_000_000, np.int64))                # 10 columns of 3M zeros: 240 MB unpacked
    pq.write_table(pa.table({f"c{i}": zeros for i in range(10)}), folder / "parquet_bomb.parquet",
                   compression="zstd")
    files["parquet_bomb.parquet"] = folder / "parquet_bomb.parquet"
    head = taobao_csv.read_bytes()[:200_000]
    head = head[:head.rfind(b"\n") + 1]
    write("field_200kb.csv", _HEADER.replace(b"\n", b",note\n") + b"1,2,pv,1511544070,\"" + b"x" * 200_000 + b"\"\n"
          + b"".join(f"{u},{u},{'pv' if u % 3 else 'buy'},{1511544070 + u},ok\n".encode() for u in range(300)))
    write("first_line_2mb.csv", b"1,2,pv," + b"x" * 2_000_000 + b"\n" + b"1,2,buy,1511544070\n" * 50)
    write("row_20mb.csv", _HEADER + b"1,2,pv,1511544070\n" * 50 + b"1,2,pv," + b"9" * 20_000_000 + b"\n"
          + b"1,2,buy,1511544070\n" * 50)
    write("mixed_utf8_gbk.csv", _HEADER + "\n".join(_CHINESE_ROWS[:100]).encode("utf-8") + b"\n"
          + "\n".join(_CHINESE_ROWS[100:]).encode("gbk") + b"\n")
    write("all_gbk.csv", _HEADER + "\n".join(_CHINESE_ROWS).encode("gbk") + b"\n")
    french = [f"{u},{u * 3},{['vué', 'achat', 'panier', 'Müller'][u % 4]},{1511544070 + u}" for u in range(200)]
    write("utf8_latin1.csv", _HEADER + "\n".join(french[:100]).encode("utf-8") + b"\n"
          + "\n".join(french[100:]).encode("latin-1") + b"\n")
    write("png_image.csv", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8)
    write("damaged.csv.gz", gzip.compress(head)[:-5000])
    os.mkfifo(folder / "pipe.csv")
    files["pipe.csv"] = folder / "pipe.csv"
    files["link_to_passwd.csv"] = folder / "link_to_passwd.csv"
    files["link_to_passwd.csv"].symlink_to("/etc/passwd")
    files["proc_environ"] = Path("/proc/self/environ")
    files["etc_passwd"] = Path("/etc/passwd")
    return files


@pytest.fixture(scope="session")
def rss_peak():
    """``rss_peak(argv, env=None) -> (peak MB, exit code, stderr)``: run ``argv`` and sample its resident memory.

    A watchdog over /proc/PID/status (VmRSS) every 20 ms rather than ``ulimit -v``, which caps address
    space and breaks allocator arenas long before memory is really used.
    """
    import os
    import subprocess
    import tempfile
    import time

    def run(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, int, str]:
        with tempfile.TemporaryFile() as errors:      # a file, not a pipe: a flood of output cannot block the child
            process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=errors,
                                       env={**os.environ, **(env or {})}, cwd=ROOT)
            peak_kb = 0
            while process.poll() is None:
                try:
                    with open(f"/proc/{process.pid}/status") as status:
                        for line in status:
                            if line.startswith("VmRSS:"):
                                peak_kb = max(peak_kb, int(line.split()[1]))
                except (FileNotFoundError, ProcessLookupError):
                    pass
                time.sleep(0.02)
            errors.seek(0)
            return peak_kb / 1024, process.returncode, errors.read().decode(errors="replace")
    return run


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread():
    """Train in-process models with one intra-op thread: they are small, and on a busy 2-core CI box a
    second spinning thread makes torch many times slower rather than faster. Session scope, so it is in
    force before any session fixture fits a model or generator (worker processes set their own)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def isolated_workspace(tmp_path, monkeypatch):
    """Every test gets its own run store folder, so no test sees another's runs."""
    monkeypatch.setenv("RECEXP_HOME", str(tmp_path / "workspace"))


#: Headers of a Chinese e-commerce export (columns of the Taobao sample, plus two descriptive columns).
CHINESE_HEADERS = {"user": "用户ID", "item": "商品ID", "category": "商品类目ID", "behavior": "行为类型",
                   "timestamp": "时间戳", "category_name": "商品类别", "item_name": "商品名称"}
_CATEGORY_WORDS = ("电子产品", "服装", "食品", "家居", "美妆", "图书", "运动户外", "母婴", "数码配件", "宠物用品",
                   "家用电器", "箱包")
_NAME_WORDS = ("轻薄款", "经典款", "加厚", "无线", "礼盒装", "迷你", "升级版", "大容量")
_BEHAVIOR_WORDS = {"pv": "浏览", "cart": "加购", "fav": "收藏", "buy": "购买"}


@pytest.fixture(scope="session")
def chinese_export(taobao_csv, tmp_path_factory):
    """``chinese_export(encoding="utf-8", headers=None, rows=5000, time_text=False, words=True)``: a file
    as a Chinese shop exports its behaviour log, made from the first ``rows`` Taobao events.

    Columns (in this order): 用户ID, 商品ID, 商品类目ID, 行为类型 (浏览/加购/收藏/购买 with ``words``, else
    pv/cart/fav/buy), 时间戳 (epoch seconds, or ``2017-11-25 08:00:35`` text with ``time_text``), then
    商品类别 (a category word per category id) and 商品名称 (a product name per item id). ``headers`` maps
    the keys of :data:`CHINESE_HEADERS` to other spellings.
    """
    import pandas as pd

    raw = pd.read_csv(taobao_csv, header=None, names=["user", "item", "category", "behavior", "timestamp"],
                      nrows=10_000).dropna().astype({"timestamp": "int64"})

    def make(encoding: str = "utf-8", headers: dict[str, str] | None = None, rows: int = 5000,
             time_text: bool = False, words: bool = True) -> Path:
        frame = raw.head(rows).copy()
        if words:
            frame["behavior"] = frame["behavior"].map(_BEHAVIOR_WORDS)
        if time_text:
            frame["timestamp"] = pd.to_datetime(frame["timestamp"], unit="s").dt.strftime("%Y-%m-%d %H:%M:%S")
        frame["category_name"] = [_CATEGORY_WORDS[c % len(_CATEGORY_WORDS)] for c in frame["category"]]
        frame["item_name"] = [f"{_CATEGORY_WORDS[c % len(_CATEGORY_WORDS)]}{_NAME_WORDS[i % len(_NAME_WORDS)]}"
                              f"{i % 97}号" for i, c in zip(frame["item"], frame["category"])]
        names = {**CHINESE_HEADERS, **(headers or {})}
        frame = frame.rename(columns=names)
        path = tmp_path_factory.mktemp("chinese") / "淘宝导出.csv"
        path.write_bytes(frame.to_csv(index=False).encode(encoding))
        return path
    return make


@pytest.fixture
def simulated_cuda_autocast(monkeypatch):
    """The trainer's autocast helper as on a CUDA machine (bfloat16 autocast when mixed precision is on),
    on the CPU: whatever runs under it computes in bf16, as it would on a GPU."""
    import torch

    from recexp.models import trainer

    def cpu_bf16(device, enabled):
        return (torch.autocast("cpu", dtype=torch.bfloat16) if enabled else contextlib.nullcontext()), None

    monkeypatch.setattr(trainer, "_autocast", cpu_bf16)


@pytest.fixture
def forward_passes():
    """A list that receives ``(module in training mode, CPU autocast on)`` for every module's forward pass."""
    import torch

    seen: list[tuple[bool, bool]] = []
    handle = torch.nn.modules.module.register_module_forward_pre_hook(
        lambda module, args: seen.append((module.training, torch.is_autocast_enabled("cpu"))))
    yield seen
    handle.remove()
