"""Find the AWS IoT code in a device repository: which stacks, which files, which lines."""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, replace
from pathlib import Path

from bridge.firmware.models import FileReport, ScanReport, SkippedFile, TouchPoint
from bridge.firmware.recipes import PatchOptions, PatchRefusedError, Recipe, load_recipes
from bridge.firmware.secrets import find_secrets
from bridge.firmware.touch import worth_reading
from bridge.firmware.walk import Candidate, walk

__all__ = ["Finding", "analyse", "scan"]

SAS_CERTIFICATE = "SAS: a device key provisioned at cutover replaces the certificate"
NOTHING_CHANGED = "found, but the recipe had nothing it could change here: by hand"
UNENCODABLE = "not rewritten: the rewrite has characters the file's encoding ({}) cannot hold"
TOO_LARGE = "too large to rewrite safely: {} bytes (limit {}, --max-rewrite-bytes): port it by hand"
VENDORED_REASON = "vendored code: reported, never edited; upgrade or replace the SDK copy"
# Verdicts come from a dry run of the patch, so a scan never promises what patch cannot do.
_DRY_RUN = PatchOptions(hub="scan.azure-devices.net")


@dataclass
class Finding:
    """A file with AWS IoT usage, the recipe that owns it, its text and its patched text."""

    report: FileReport
    text: str
    recipe: Recipe | None
    patched: str | None = None
    encoding: str = "utf-8"  # how the file's bytes were read, and how a rewrite is written

    def patched_bytes(self) -> bytes | None:
        """The rewrite in the file's own encoding (bytes outside the edits stay as they were)."""
        return None if self.patched is None else self.patched.encode(self.encoding)


def analyse(
    root: Path,
    options: PatchOptions = _DRY_RUN,
    recipes: tuple[Recipe, ...] | None = None,
) -> tuple[ScanReport, list[Finding]]:
    """The scan report, with verdicts from patching each file in memory with `options`."""
    recipes = load_recipes() if recipes is None else recipes
    stats: dict[str, int] = {}
    findings: list[Finding] = []
    # Arduino builds a sketch folder's .ino files as one translation unit: they are
    # classified and patched together, each with the others as read-only context.
    sketches: dict[str, list[Candidate]] = {}
    skipped: list[tuple[str, str]] = []
    unclaimed: list[Candidate] = []
    for candidate in walk(str(root), stats, skipped):
        if candidate.path.endswith(".ino"):
            sketches.setdefault(candidate.path.rpartition("/")[0], []).append(candidate)
            continue
        if not worth_reading(candidate.data):
            continue
        finding = _examine_candidate(candidate, recipes, options, (), root=root)
        if finding is not None:
            findings.append(finding)
        elif candidate.path.endswith(_PROGRAMS):
            unclaimed.append(candidate)
    findings += _reading_settings(unclaimed, findings, recipes, options)
    for sketch in sketches.values():
        if not any(worth_reading(candidate.data) for candidate in sketch):
            continue
        texts = [_decoded(candidate.data)[0] for candidate in sketch]
        for index, candidate in enumerate(sketch):
            unit = tuple(texts[:index] + texts[index + 1 :])
            finding = _examine_candidate(candidate, recipes, options, unit, root=root)
            if finding is not None:
                findings.append(finding)
    findings.sort(key=lambda finding: finding.report.file)
    _hold_dependents(findings)
    _hold_manifests(findings)
    report = ScanReport(
        root=str(root),
        files_scanned=stats.get("scanned", 0),
        files_skipped=stats.get("skipped", 0),
        stacks=sorted({f.report.stack for f in findings} - {"generic", "unknown"}),
        files=[finding.report for finding in findings],
        skipped=[SkippedFile(file=file, reason=reason) for file, reason in sorted(skipped)],
    )
    return report, findings


# Settings files whose AWS endpoint the generic recipe rewrites, and the programs that
# may read them (`json.load(open("config.json"))` then `client.connect(config["endpoint"])`).
_SETTINGS = (".json", ".yaml", ".yml", ".toml", ".ini", ".cfg", ".env")
_PROGRAMS = (".py", ".js", ".cjs", ".mjs", ".ts")


def _reading_settings(
    unclaimed: list[Candidate],
    findings: list[Finding],
    recipes: tuple[Recipe, ...],
    options: PatchOptions,
) -> list[Finding]:
    """Programs that name no AWS host themselves but read a settings file holding one.

    Without this the settings file's endpoint was rewritten to the hub while the program
    that reads it, on paho say, was never looked at: it then dialled the hub with no
    IoT Hub user name and AWS's topics, and the report showed nothing of it. The settings
    file's text joins the program's for choosing its recipe (as a sketch's other tabs do),
    never for its rewrite."""
    settings = {
        posixpath.basename(f.report.file): f.text
        for f in findings
        if f.report.file.endswith(_SETTINGS)
        and any(p.kind == "endpoint" for p in f.report.touch_points)
    }
    found = []
    for candidate in unclaimed:
        text = _decoded(candidate.data)[0]
        names = [name for name in settings if re.search(rf"""['"/]{re.escape(name)}['"]""", text)]
        if not names:
            continue
        context = tuple(settings[name] for name in names)
        finding = _examine_candidate(candidate, recipes, options, (), context=context)
        if finding is not None and finding.recipe is not None:
            found.append(finding)
    return found


# A JavaScript/TypeScript file's local modules: `require('../util/cli_args')`, `from './x'`.
_LOCAL_IMPORT = re.compile(r"""(?:require\(\s*|\bfrom\s+)['"](\.{1,2}/[^'"\n]+)['"]""")
_JS = (".js", ".cjs", ".mjs", ".ts", ".tsx")
HELD = "not rewritten: it uses {} from {}, which is not rewritten ({}); the two must move together"


def _hold_dependents(findings: list[Finding]) -> None:
    """A JavaScript file whose SDK objects come from a local module of the same stack
    that could not be rewritten (aws-iot-device-sdk-js-v2's samples take their connection
    from util/cli_args.js) keeps its own code too: rewritten alone, it would hand IoT Hub
    calls to an AWS connection while the report said they were done."""
    by_file = {finding.report.file: finding for finding in findings}
    changed = True
    while changed:
        changed = False
        for finding in findings:
            if finding.patched is None or not finding.report.file.endswith(_JS):
                continue
            held = _refused_dependency(finding, by_file)
            if held is None:
                continue
            spec, other, reason = held
            update = HELD.format(spec, other.report.file, reason)
            finding.patched = None
            finding.report.touch_points = [
                _human(point, update) for point in finding.report.touch_points
            ]
            changed = True


MANIFEST_HELD = (
    "not rewritten: no program of this package moves to IoT Hub ({}: {}), so Microsoft's "
    "packages would only sit beside AWS's"
)


def _hold_manifests(findings: list[Finding]) -> None:
    """A package.json of a Node stack gains Microsoft's packages only when a program of
    the same stack under its folder is rewritten: beside a refused program alone (a
    SigV4 websocket device, say) the report claimed the manifest "rewritten" for nothing."""
    for manifest in findings:
        path = manifest.report.file
        if posixpath.basename(path) != "package.json" or manifest.patched is None:
            continue
        folder = posixpath.dirname(path)
        programs = [
            f
            for f in findings
            if f is not manifest
            and f.report.stack == manifest.report.stack
            and f.report.file.endswith(_JS)
            and (not folder or f.report.file.startswith(folder + "/"))
            and not f.report.vendored
        ]
        if not programs or any(f.patched is not None for f in programs):
            continue
        reasons = [
            (f.report.file, p.reason.removeprefix("not rewritten: "))
            for f in programs
            for p in f.report.touch_points
            if p.verdict == "needs_human"
        ]
        if not reasons:
            continue
        manifest.patched = None
        update = MANIFEST_HELD.format(*reasons[0])
        manifest.report.touch_points = [_human(p, update) for p in manifest.report.touch_points]


def _refused_dependency(
    finding: Finding, by_file: dict[str, Finding]
) -> tuple[str, Finding, str] | None:
    folder = posixpath.dirname(finding.report.file)
    for spec in _LOCAL_IMPORT.findall(finding.text):
        # TypeScript samples compile to dist/, and their relative requires count from there.
        for base in (folder, posixpath.join(folder, "dist")):
            target = posixpath.normpath(posixpath.join(base, spec))
            for name in (target, *(target + ext for ext in _JS), f"{target}/index.js"):
                other = by_file.get(name)
                if other is None or other is finding or other.report.stack != finding.report.stack:
                    continue
                if other.patched is not None or other.report.vendored:
                    continue
                reasons = [
                    p.reason
                    for p in other.report.touch_points
                    if p.verdict == "needs_human" and p.reason.startswith("not rewritten: ")
                ]
                if reasons:
                    return spec, other, reasons[0].removeprefix("not rewritten: ")
    return None


def _decoded(data: bytes) -> tuple[str, str]:
    """The file's text and the encoding it was read with."""
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        # Legacy sources (Latin-1 comments, degree signs in LCD strings): every byte
        # maps to one character, so a rewrite can be written back byte for byte.
        return data.decode("latin-1"), "latin-1"


_LOCAL_INCLUDE = re.compile(r'^[ \t]*#[ \t]*include[ \t]*"([^"\n]+)"', re.MULTILINE)
_C_SOURCES = (".ino", ".c", ".cpp", ".cc", ".h", ".hpp")
_HEADER_LIMIT = 256 * 1024


def _local_headers(root: Path | None, path: str, text: str) -> tuple[str, ...]:
    """The texts of the local headers a C/C++ file includes: beside it, or in the
    `include/` folder of a PlatformIO project (`src/main.cpp` with `include/secrets.h`)."""
    if root is None or not path.endswith(_C_SOURCES):
        return ()
    folder = posixpath.dirname(path)
    found: list[str] = []
    for name in _LOCAL_INCLUDE.findall(text):
        for base in (folder, posixpath.join(posixpath.dirname(folder), "include"), "include"):
            relative = posixpath.normpath(posixpath.join(base, name))
            if relative.startswith("../"):
                continue
            target = root / relative
            if target.is_file() and not target.is_symlink():
                if target.stat().st_size <= _HEADER_LIMIT:
                    found.append(_decoded(target.read_bytes())[0])
                break
    return tuple(found)


def _examine_candidate(
    candidate: Candidate,
    recipes: tuple[Recipe, ...],
    options: PatchOptions,
    unit: tuple[str, ...],
    *,
    context: tuple[str, ...] = (),
    root: Path | None = None,
) -> Finding | None:
    text, encoding = _decoded(candidate.data)
    headers = _local_headers(root, candidate.path, text)
    if unit or headers:
        options = replace(options, unit=unit, headers=headers)
    return _examine(
        candidate.path,
        text,
        candidate.vendored,
        recipes,
        options,
        encoding=encoding,
        size=len(candidate.data),
        context=context,
    )


def scan(root: Path, options: PatchOptions = _DRY_RUN) -> ScanReport:
    """Every AWS IoT touch point under `root`."""
    return analyse(root, options)[0]


def _examine(
    path: str,
    text: str,
    vendored: bool,  # noqa: FBT001
    recipes: tuple[Recipe, ...],
    options: PatchOptions,
    *,
    encoding: str = "utf-8",
    size: int = 0,
    context: tuple[str, ...] = (),
) -> Finding | None:
    # A file of a translation unit belongs to the stack the whole unit is written for, and
    # a program to the stack of the settings it reads (`context`).
    whole = "\n".join((text, *options.unit, *context))
    recipe = next((r for r in recipes if r.detect(path, whole)), None)
    stack = recipe.stack if recipe else "unknown"
    points = recipe.scan(path, text) if recipe else []
    patched = None
    if recipe is not None and not vendored and size > options.max_rewrite_bytes:
        # Line rules are cheap; the parsers behind a rewrite are not (LibCST: ~35 s for
        # 2 MB). The file is listed, never parsed, and never promised a rewrite.
        reason = TOO_LARGE.format(size, options.max_rewrite_bytes)
        large = TouchPoint(
            file=path, line=1, kind="too_large", stack=stack, verdict="needs_human", reason=reason
        )
        points = [large, *(_human(point, reason) for point in points)]
        recipe = None
    if vendored and recipe is not None and not points:
        # An SDK copy with no line-level touch point is still AWS IoT code to replace.
        point = TouchPoint(
            file=path, line=1, kind="vendored_sdk", stack=stack, verdict="needs_human", reason=""
        )
        points = [point]
    if points and vendored:
        update = {"verdict": "needs_human", "reason": VENDORED_REASON}
        points = [point.model_copy(update=update) for point in points]
    elif recipe is not None and any(p.verdict == "rewritten" for p in points):
        patched, points = _patched(recipe, path, text, options, encoding, points)
    secrets = find_secrets(path, text, stack)
    if not points and not secrets:
        return None
    secret_lines = {point.line for point in secrets}
    # A secret's line is reported once, as a secret, so no other rule can echo it.
    points = [point for point in points if point.line not in secret_lines]
    ordered = sorted([*points, *secrets], key=lambda point: (point.line, point.kind))
    report = FileReport(file=path, stack=stack, vendored=vendored, touch_points=ordered)
    return Finding(report, text, None if vendored else recipe, patched, encoding)


def _patched(  # noqa: PLR0917 - one call site, all of it the file's context
    recipe: Recipe,
    path: str,
    text: str,
    options: PatchOptions,
    encoding: str,
    points: list[TouchPoint],
) -> tuple[str | None, list[TouchPoint]]:
    """The recipe's rewrite of the file, and the touch points with the verdicts it earns."""
    try:
        patched = recipe.patch(path, text, options)
    except PatchRefusedError as refused:
        return None, [_human(point, f"not rewritten: {refused}") for point in points]
    if patched is not None:
        patched = _line_endings_of(text, patched)
    if patched is None or patched == text:
        if _MOVED.search(text):
            # Patched before: what the line rules still find is the patch's own work
            # (`setCACert(IOTHUB_ROOT_CAS)`, `iothub_publish(topic, ...)`, the generated
            # block's keep-alive helper), not a task for a human.
            block = _generated_lines(text)
            return patched, [
                point.model_copy(update={"reason": ALREADY_MOVED})
                if point.verdict == "rewritten"
                else point
                for point in points
                if point.line not in block
            ]
        # Never claim a rewrite the patch does not make.
        return patched, [_human(point, NOTHING_CHANGED) for point in points]
    if not _encodable(patched, encoding):
        return None, [_human(point, UNENCODABLE.format(encoding)) for point in points]
    if options.auth == "sas":
        return patched, [_sas(point) for point in points]
    return patched, points


ALREADY_MOVED = "already on IoT Hub (patched before): nothing left to change here"
# What a patched file carries: the generated blocks' markers, the Arduino and C recipes'
# names, IoT Hub's own topics.
_MOVED = re.compile(
    r"iot-bridge|\bIOTHUB_(?:USER|ROOT_CAS|HOST)\b|\bIOTHUB_(?:EVENTS|INBOUND)_\w+|"
    r"/messages/(?:events|devicebound)/|[\w-]\.azure-devices\.net\b"
)
_BLOCK = re.compile(r"^\W*(>>>|<<<) iot-bridge\b", re.MULTILINE)


def _generated_lines(text: str) -> set[int]:
    """The line numbers of the blocks a patch generated (`# >>> iot-bridge ...` to
    `# <<< iot-bridge ...`)."""
    lines: set[int] = set()
    start = None
    for match in _BLOCK.finditer(text):
        number = text.count("\n", 0, match.start()) + 1
        if match.group(1) == ">>>":
            start = number
        elif start is not None:
            lines.update(range(start, number + 1))
            start = None
    return lines


def _line_endings_of(original: str, patched: str) -> str:
    """`patched` with the original's CRLF line endings where the recipe wrote bare LFs.

    Recipes insert blocks with "\n"; a Windows-edited file would come back with mixed
    endings, which editors, `git diff` and `.gitattributes eol=crlf` all trip over.
    """
    if "\r\n" not in original or original.count("\n") != original.count("\r\n"):
        return patched
    return patched.replace("\r\n", "\n").replace("\n", "\r\n")


def _encodable(text: str, encoding: str) -> bool:
    try:
        text.encode(encoding)
    except UnicodeEncodeError:
        return False
    return True


def _sas(point: TouchPoint) -> TouchPoint:
    # Under --auth sas a rewritten program no longer presents its certificate.
    if point.kind != "certificate" or point.verdict != "rewritten":
        return point
    return point.model_copy(update={"reason": SAS_CERTIFICATE})


def _human(point: TouchPoint, reason: str) -> TouchPoint:
    if point.verdict == "needs_human":
        return point
    return point.model_copy(update={"verdict": "needs_human", "reason": reason})
