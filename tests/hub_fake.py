"""An offline stand-in for the Hub client: transformers' shared
``HfApi`` (``transformers.utils.hub._hf_api``) is replaced by one whose ``create_repo``/``create_commit`` write
the pushed files into a local folder per repository. ``upload_folder`` (what ``Trainer.push_to_hub`` calls) is
replaced too: the real one first sends README.md's metadata to the Hub for validation."""

from __future__ import annotations

import shutil
from pathlib import Path

from huggingface_hub import CommitInfo, CommitOperationAdd, HfApi, RepoUrl
from huggingface_hub.utils import filter_repo_objects


class LocalHub(HfApi):
    """Pushed repositories land in ``root/<owner>/<name>``; ``pushes`` lists ``(repo_id, commit_message)``."""

    def __init__(self, root: Path):
        super().__init__(endpoint="https://huggingface.co", token=False)
        self.root = Path(root)
        self.pushes: list[tuple[str, str]] = []

    def folder(self, repo_id: str) -> Path:
        return self.root / repo_id

    def whoami(self, token=None, **kwargs):
        """Any token is accepted (hfadapt checks the token before training)."""
        return {"type": "user", "name": "someone"}

    def create_repo(self, repo_id, *args, **kwargs):
        self.folder(repo_id).mkdir(parents=True, exist_ok=True)
        return RepoUrl(f"https://huggingface.co/{repo_id}")

    def create_commit(self, repo_id, operations, *, commit_message="", **kwargs):
        for op in operations:  # copy at once: the source may be a temporary folder
            target = self.folder(repo_id) / op.path_in_repo
            target.parent.mkdir(parents=True, exist_ok=True)
            source = op.path_or_fileobj
            if isinstance(source, (str, Path)):
                shutil.copyfile(source, target)
            elif isinstance(source, bytes):
                target.write_bytes(source)
            else:
                target.write_bytes(source.read())
        self.pushes.append((repo_id, commit_message))
        return CommitInfo(commit_url=f"https://huggingface.co/{repo_id}/commit/{'0' * 40}",
                          commit_message=commit_message, commit_description="", oid="0" * 40)

    def upload_folder(self, *, repo_id, folder_path, path_in_repo=None, commit_message="", allow_patterns=None,
                      ignore_patterns=None, run_as_future=False, **kwargs):
        root = Path(folder_path)
        files = [p.relative_to(root).as_posix() for p in sorted(root.rglob("*")) if p.is_file()]
        kept = filter_repo_objects(files, allow_patterns=allow_patterns, ignore_patterns=ignore_patterns)
        operations = [CommitOperationAdd(path_in_repo=f"{path_in_repo}/{f}" if path_in_repo else f,
                                         path_or_fileobj=str(root / f)) for f in kept]
        return self.create_commit(repo_id, operations, commit_message=commit_message)
