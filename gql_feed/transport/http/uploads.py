"""The GraphQL multipart request (the upload spec Apollo's clients follow), checked whole.

A multipart request carries `operations` (the JSON operation, or a batch of them, with
`null` where each file goes), `map` (JSON: each file part's name to the paths, such as
`variables.input.image` or `0.variables.input.image`, where it goes), and the file
parts. Strawberry places the files without checking the paths, so a path through a
null, into a string, past the end of a list or not a string at all raised TypeError,
IndexError or KeyError: a 500 and a logged traceback per request. Here every malformed
piece is a 400 with a message saying which, and nothing is executed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cross_web import HTTPException
from starlette.datastructures import UploadFile

MAP_SHAPE = "The multipart `map` field must be a JSON object of file names to lists of paths."


def place_files(operations: object, files_map: object, parts: Mapping[str, Any]) -> object:
    """`operations` with each mapped file part put where `map` says (changed in place:
    it was just parsed for this request)."""
    if not isinstance(operations, dict | list):
        raise HTTPException(400, "The multipart `operations` field must be a JSON object or array.")
    if not isinstance(files_map, dict):
        raise HTTPException(400, MAP_SHAPE)
    for name, paths in files_map.items():
        if not isinstance(paths, list) or not all(isinstance(path, str) for path in paths):
            raise HTTPException(400, MAP_SHAPE)
        file = parts.get(name)
        if not isinstance(file, UploadFile):
            raise HTTPException(400, f"The file part {name!r} named in `map` is missing.")
        for path in paths:
            _put(operations, path, file)
    return operations


def _put(operations: dict[str, Any] | list[Any], path: str, file: UploadFile) -> None:
    *steps, last = path.split(".")
    target: object = operations
    for step in steps:
        if isinstance(target, dict) and step in target:
            target = target[step]
        elif isinstance(target, list) and (index := _index(step, target)) is not None:
            target = target[index]
        else:
            raise _bad_path(path)
    if isinstance(target, dict):
        target[last] = file
    elif isinstance(target, list) and (index := _index(last, target)) is not None:
        target[index] = file
    else:
        raise _bad_path(path)


def _index(step: str, items: list[Any]) -> int | None:
    if not step.isascii() or not step.isdigit() or len(step) > 9:
        return None
    index = int(step)
    return index if index < len(items) else None


def _bad_path(path: str) -> HTTPException:
    shown = path if len(path) <= 100 else path[:100] + "…"
    return HTTPException(400, f"The `map` path {shown!r} does not lead to a place in `operations`.")
