"""Owned temporary folders: a folder whose process ended without removing it is removed by the next one."""

import os
import subprocess
import sys
import tempfile

import pytest

from digitrec_utils.utils.scratch import OWNER_FILE, make_owned_folder, remove_abandoned_folders, remove_owned_folder

pytest.importorskip("fcntl", reason="owned folders need fcntl's locks, which Windows lacks")


def _run_python(code: str, temporary) -> str:
    """Run ``code`` in a fresh interpreter whose temporary folder is ``temporary``; return what it printed."""
    environment = {**os.environ, "TMPDIR": str(temporary)}
    process = subprocess.run([sys.executable, "-c", code], env=environment, capture_output=True, text=True,
                             timeout=60)
    return process.stdout


def test_only_folders_whose_owner_has_ended_are_removed(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    living = make_owned_folder("digitrec-test-")  # Owned by this process, which lives on.
    # One owner is killed, one exits without cleaning up; each leaves a file in its folder.
    made = ("import os, signal\nfrom digitrec_utils.utils.scratch import make_owned_folder\n"
            "folder = make_owned_folder('{prefix}')\n(folder / 'model.keras').write_text('x')\n"
            "print(folder, flush=True)\n")
    killed = _run_python(made.format(prefix="digitrec-test-") + "os.kill(os.getpid(), signal.SIGKILL)",
                         tmp_path).strip()
    ended = _run_python(made.format(prefix="digitrec-test-") + "os._exit(0)", tmp_path).strip()
    other_prefix = _run_python(made.format(prefix="digitrec-other-") + "os._exit(0)", tmp_path).strip()
    unowned = tmp_path / "digitrec-test-unowned"  # Being made, or made by an older digitrec.
    unowned.mkdir()
    assert all(os.path.isfile(os.path.join(folder, OWNER_FILE)) for folder in (killed, ended, other_prefix))

    # Another process sweeps, so that this one's lock, not its own record of its folders, keeps `living`.
    removed = _run_python("from digitrec_utils.utils.scratch import remove_abandoned_folders\n"
                          "print('\\n'.join(map(str, remove_abandoned_folders('digitrec-test-'))))", tmp_path)
    assert sorted(removed.split()) == sorted([killed, ended])
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(
        [living.name, unowned.name, os.path.basename(other_prefix)])

    assert remove_abandoned_folders("digitrec-test-") == []  # Nor does its own process remove it.
    remove_owned_folder(living)
    assert not living.exists()
    # Once its owner has ended, the other prefix's folder goes too.
    assert remove_abandoned_folders("digitrec-other-") == [tmp_path / os.path.basename(other_prefix)]
