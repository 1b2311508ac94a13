"""Secrets: where a `${...}` value comes from, how it goes into a URL, and how it is kept
out of every output.

- References: `${NAME}` reads the environment, `${file:PATH}` a file (relative to the
  config file's folder), `${cred:NAME}` a systemd credential ($CREDENTIALS_DIRECTORY/NAME).
  A value read from a file loses one trailing newline. substitute() replaces them in a
  string and returns every value it inserted: each one is a secret.
- URLs: in a channel or feed URL a value is percent-encoded for the part of the URL its
  reference sits in (see encode_for_url_part), so a password holding `@ # / ? : %` or a
  space reaches the service exactly and can never move the host, path or query. Apprise
  and requests decode user name, password, host, path segments and query values, so the
  service gets the value back as it was.
- Masking: SECRETS is the process's one SecretMask; the log formatters, a filter on
  Apprise's logger, error messages, `check`, `status` and `notify test` all pass their
  text through it. A secret is masked in every form it may take there: as it is, percent-
  encoded (upper- or lower-case hex, a space as `+`), escaped by repr() or JSON, and in the
  pieces Apprise makes of it (see SecretMask).
"""

from __future__ import annotations

import contextlib
import contextvars
import enum
import functools
import json
import logging
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

MASK = "****"
# A secret shorter than this is not masked. Masking "1" or "ab" would garble every number,
# index and word in the output around it (line numbers, counts, ports, key names) and make
# messages unreadable, while a value that short protects nothing anyway.
MINIMUM_MASKED_LENGTH = 4

__all__ = [
    "MASK",
    "MINIMUM_MASKED_LENGTH",
    "SECRETS",
    "MaskingFilter",
    "ProcessSecrets",
    "SecretMask",
    "Substitution",
    "UrlPart",
    "encode_for_url_part",
    "secret_parts_of_url",
    "substitute",
    "url_parts_of_references",
]


# --------------------------------------------------------------------------- references

REFERENCE = re.compile(r"\$\{([^}]*)\}")
_VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class Substitution:
    """A string with its references replaced: the text, the problems met (a reference left
    as written for each), and every value inserted (each one a secret)."""

    text: str
    problems: tuple[str, ...]
    values: tuple[str, ...]


def substitute(
    text: str, folder: Path, environ: Mapping[str, str], *, url: bool = False
) -> Substitution:
    """Given a string of the configuration, return it with every ${...} replaced.

    With `url`, the string is a URL and each value is encoded for the part of the URL its
    reference sits in (url_parts_of_references). `folder` is where ${file:PATH} starts.
    """
    matches = list(REFERENCE.finditer(text))
    problems: list[str] = []
    values: list[str | None] = []  # each reference's value, None when it has none
    for match in matches:
        try:
            values.append(_resolve_reference(match.group(1), folder, environ))
        except ValueError as error:
            problems.append(str(error))
            values.append(None)
    if "${" in REFERENCE.sub("", text):
        problems.append("unterminated ${: write ${NAME}, ${file:PATH} or ${cred:NAME}")
    # The text before each reference, then the text after the last.
    edges = [0, *(edge for match in matches for edge in match.span()), len(text)]
    literals = [text[edges[index] : edges[index + 1]] for index in range(0, len(edges), 2)]
    parts = url_parts_of_references(literals, values) if url else [None] * len(matches)
    pieces = [literals[0]]
    for match, value, part, literal in zip(matches, values, parts, literals[1:], strict=True):
        if value is None:
            pieces.append(match.group(0))
        else:
            pieces.append(value if part is None else encode_for_url_part(value, part))
        pieces.append(literal)
    inserted = tuple(value for value in values if value is not None)
    return Substitution("".join(pieces), tuple(problems), inserted)


def _resolve_reference(reference: str, folder: Path, environ: Mapping[str, str]) -> str:
    """Given what is inside ${...}, return its value. Raise ValueError if there is none."""
    kind, colon, argument = reference.partition(":")
    if not colon:
        if not _VARIABLE_NAME.fullmatch(reference):
            raise ValueError(f"${{{reference}}} is not a valid environment variable name")
        if reference not in environ:
            raise ValueError(f"environment variable {reference} is not set")
        return environ[reference]
    if kind == "file":
        if not argument:
            raise ValueError("${file:} needs a path")
        return _read_secret_file(folder / argument, f"${{file:{argument}}}")
    if kind == "cred":
        return _read_credential(argument, environ)
    raise ValueError(
        f"unknown reference ${{{kind}:...}}; use ${{NAME}}, ${{file:PATH}} or ${{cred:NAME}}"
    )


def _read_credential(name: str, environ: Mapping[str, str]) -> str:
    # systemd's LoadCredential= puts each credential in a file of that name there.
    if not name or "/" in name or name in (".", ".."):
        raise ValueError(f"${{cred:{name}}}: a credential name is a plain file name")
    directory = environ.get("CREDENTIALS_DIRECTORY")
    if not directory:
        raise ValueError(f"credential {name}: $CREDENTIALS_DIRECTORY is not set")
    return _read_secret_file(Path(directory) / name, f"credential {name}")


def _read_secret_file(path: Path, what: str) -> str:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ValueError(f"{what}: cannot read {path}: {error.strerror or error}") from None
    except UnicodeDecodeError:
        raise ValueError(f"{what}: {path} is not UTF-8 text") from None
    # Files written by editors and `echo` end with a newline that is not part of the value.
    if text.endswith("\r\n"):
        return text[:-2]
    return text.removesuffix("\n")


# ------------------------------------------------------------------------------ in URLs


class UrlPart(enum.Enum):
    """Where a reference sits in a URL as written (RFC 3986's parts)."""

    WHOLE = "whole"  # before the scheme's "://": the value is (the start of) the URL itself
    USERINFO = "userinfo"  # user name or password, before the host's "@"
    HOST = "host"  # host and port
    PATH = "path"
    QUERY = "query"
    FRAGMENT = "fragment"


# What each part leaves unencoded besides the unreserved characters (letters, digits and
# "-._~", which quote() never encodes). Everything else is percent-encoded, so a value
# stays inside its part, and inside its user name, password, path segment or query value:
# Apprise splits user from password at ":", the path into tokens at "/", the query at "&"
# and ";" (and a "+" there stays a "+", never a space).
# A host keeps ":" and "[ ]": they write a port and an IPv6 address, and a Telegram bot
# token (digits:letters) sits where the host is. A host with any other such character
# is no host: Apprise and requests reject it rather than go elsewhere.
_SAFE_IN = {
    UrlPart.USERINFO: "",
    UrlPart.HOST: ":[]",
    UrlPart.PATH: "",
    UrlPart.QUERY: "",
    UrlPart.FRAGMENT: "",
}


def encode_for_url_part(value: str, part: UrlPart) -> str:
    """Given a substituted value and the URL part it goes into, return it encoded for that
    part (UTF-8, then percent-encoding). A value in the WHOLE position is a URL of the
    user's own making (`${APPRISE_URL}`) and goes in as it is."""
    if part is UrlPart.WHOLE:
        return value
    return quote(value, safe=_SAFE_IN[part])


def url_parts_of_references(literals: list[str], values: list[str | None]) -> list[UrlPart]:
    """Given a URL as written, cut at its references (the text before each reference, then
    the text after the last) and the references' values, return the part of the URL each
    reference sits in.

    The parts come from the text as written, never from the values: a value cannot make
    itself a host or a query. A reference before the scheme's "://" (none written yet) is
    the URL itself, or its start, and its value counts as written text for what follows.
    """
    skeleton = ""
    positions: list[int | None] = []  # where each encoded value sits in the skeleton
    for index, value in enumerate(values):
        skeleton += literals[index]
        if "://" not in skeleton:
            positions.append(None)
            skeleton += value or ""
        else:
            positions.append(len(skeleton))
            skeleton += "\0"  # stands for the value: no delimiter of any part
    skeleton += literals[-1]
    scheme_end = skeleton.find("://") + 3
    authority_end = _first_of(skeleton, "/?#", scheme_end)
    userinfo_end = skeleton.rfind("@", scheme_end, authority_end)  # -1: no user info
    fragment_start = _first_of(skeleton, "#", authority_end)
    query_start = _first_of(skeleton, "?", authority_end, fragment_start)
    parts = []
    for position in positions:
        if position is None:
            parts.append(UrlPart.WHOLE)
        elif position < authority_end:
            parts.append(UrlPart.USERINFO if position < userinfo_end else UrlPart.HOST)
        elif position > fragment_start:
            parts.append(UrlPart.FRAGMENT)
        elif position > query_start:
            parts.append(UrlPart.QUERY)
        else:
            parts.append(UrlPart.PATH)
    return parts


def _first_of(text: str, characters: str, start: int, end: int | None = None) -> int:
    """The index of the first of `characters` in text[start:end], else `end` (or len)."""
    end = len(text) if end is None else end
    found = [index for index in (text.find(c, start, end) for c in characters) if index >= 0]
    return min(found, default=end)


def secret_parts_of_url(url: str, masked_url: str) -> set[str]:
    """Given a channel URL as Apprise gets it and Apprise's privacy-masked form of it,
    return the pieces of the URL that the masked form hides: secrets written into the
    URL itself rather than substituted.

    Always the password; otherwise tokens of 6+ characters that look like keys (a digit, an
    upper-case letter or a non-letter in them), so query words such as "insecure" stay.
    """
    split_at = re.compile(r"[/:@?&=,;#+\s]+")
    shown = {*split_at.split(masked_url.split("://", 1)[-1]), *split_at.split(unquote(masked_url))}
    parts: set[str] = set()
    try:
        password = urlsplit(url.strip()).password
    except ValueError:
        password = None
    if password:
        parts.update({password, unquote(password)})
    rest = url.split("://", 1)[-1]
    for token in {*split_at.split(rest), *split_at.split(unquote(rest))}:
        if len(token) < 6 or token in shown:
            continue
        if token.isalpha() and token.islower():
            continue
        parts.add(token)
    return {part for part in parts if part}


# ------------------------------------------------------------------------------ masking


class SecretMask:
    """A set of secret values and the means to hide them in any text.

    Two kinds of values: the configuration's secrets (every substituted value), replaced
    at each (re)load by update(), and values found in channel URLs (secret_parts_of_url),
    which add() keeps for the life of the process, as Apprise objects built from them may
    still log. Values shorter than MINIMUM_MASKED_LENGTH are ignored.

    apply() replaces each occurrence of a value by MASK, whatever case it is written in,
    with any of its characters written as it is, percent-encoded (either hex case; a space
    also as "+"), or escaped as repr() or JSON write it (a backslash doubled, \\uXXXX...).
    It also masks what Apprise makes of a value: stripped of surrounding spaces (query
    values), cut at "@" and spaces (the e-mail plugin builds a sender address from the user
    name's first piece), and its last four characters after "..." (the privacy form some
    plugins print for keys).
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._lock = threading.Lock()
        self._configured: frozenset[str] = frozenset()
        self._found: frozenset[str] = frozenset()
        # (every written form, the forms as they are): see apply().
        self._patterns: tuple[re.Pattern[str], re.Pattern[str]] | None = None
        self.update(secrets)

    def update(self, secrets: Iterable[str]) -> None:
        """Use these as the configuration's secrets, in place of the previous ones."""
        with self._lock:
            self._configured = frozenset(secrets)
            self._compile()

    def add(self, secrets: Iterable[str]) -> None:
        """Mask these too, from now on (secrets found in channel URLs)."""
        with self._lock:
            found = self._found | frozenset(secrets)
            if found != self._found:
                self._found = found
                self._compile()

    def apply(self, text: str) -> str:
        """Given any text, return it with every secret masked."""
        patterns = self._patterns
        if patterns is None or not text:
            return text
        every_form, lower_case = patterns
        # Every log line passes here. A text without "%", "\\" or "+" can hold a secret
        # only as it is: a case-sensitive search of its lower-case copy tells whether it
        # does in a tenth of the time of the full, case-insensitive pattern.
        plain = "%" not in text and "\\" not in text and "+" not in text
        if plain and lower_case.search(text.lower()) is None:
            return text
        return every_form.sub(MASK, text)

    def _compile(self) -> None:
        forms = {form for value in self._configured | self._found for form in _forms_of(value)}
        if not forms:
            self._patterns = None
            return
        # Longest first: where one secret holds another, the whole of it is masked.
        ordered = sorted(forms, key=lambda form: (-len(form), form))
        self._patterns = (
            re.compile("|".join(map(_form_pattern, ordered)), re.IGNORECASE),
            re.compile("|".join(re.escape(form.lower()) for form in ordered)),
        )


def _forms_of(value: str) -> set[str]:
    """The strings to mask for one secret (see SecretMask); none if the value is short."""
    if len(value) < MINIMUM_MASKED_LENGTH:
        return set()
    pieces = {value, value.strip(), *re.split(r"[\s@]+", value)}
    forms = {piece for piece in pieces if len(piece) >= MINIMUM_MASKED_LENGTH}
    forms.add("..." + value[-MINIMUM_MASKED_LENGTH:])
    return forms


def _form_pattern(form: str) -> str:
    return "".join(_character_pattern(character) for character in form)


@functools.cache
def _character_pattern(character: str) -> str:
    """A regular expression for one character of a secret in any of the ways it is written."""
    written = {
        character,
        "".join(f"%{byte:02X}" for byte in character.encode("utf-8")),
        json.dumps(character)[1:-1],
        repr(character)[1:-1],
    }
    if character == " ":
        written.add("+")
    if character in "'\"":
        written.add("\\" + character)  # repr() of a text holding both kinds of quote
    if len(written) == 1:
        return re.escape(character)
    return "(?:" + "|".join(re.escape(form) for form in sorted(written, key=len)[::-1]) + ")"


class ProcessSecrets(SecretMask):
    """The process's secrets (SECRETS), and for the code running in one context (a thread)
    the secrets of a configuration being loaded: see including()."""

    def __init__(self) -> None:
        super().__init__()
        self._loading: contextvars.ContextVar[SecretMask | None] = contextvars.ContextVar(
            "secrets_being_loaded", default=None
        )

    @contextlib.contextmanager
    def including(self, secrets: Iterable[str]) -> Iterator[None]:
        """Mask `secrets` too, in what this context (thread) writes until the block ends.

        Loading a configuration checks its URLs with Apprise, which may log a warning
        holding a value (the sender address it built from a user name) before the
        configuration is accepted and its secrets become the process's.
        """
        token = self._loading.set(SecretMask(secrets))
        try:
            yield
        finally:
            self._loading.reset(token)

    def apply(self, text: str) -> str:
        text = super().apply(text)
        loading = self._loading.get()
        return loading.apply(text) if loading is not None else text


# The secrets of the configuration in use, and those found in its channel URLs.
SECRETS = ProcessSecrets()


class MaskingFilter(logging.Filter):
    """A logging filter that masks SECRETS in every record's message, before any handler
    sees it. On Apprise's logger it also keeps secrets out of the log entries Apprise
    collects for each notification (where the reason of a failure is read)."""

    def __init__(self, mask: Callable[[str], str] | None = None) -> None:
        super().__init__()
        self._mask = mask or SECRETS.apply

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - leave a malformed record to logging itself
            return True
        cleaned = self._mask(message)
        if cleaned != message:
            record.msg = cleaned
            record.args = None
        return True


def url_safe_to_show(url: str, written: str | None) -> str:
    """Given a URL read from the database and the configured URL it came from (None when
    unknown), return it safe to show. status resolves no feed secret, so it cannot mask
    one: where the configured URL has a ${...} (or might have), the parts that could hold
    it are cut: user and password, query and fragment, and the path if it has one there."""
    if written is not None and "${" not in written:
        return url
    try:
        parts = urlsplit(url)
        port = f":{parts.port}" if parts.port else ""
        written_path = urlsplit(written).path if written is not None else "${"
    except ValueError:
        return "…"
    path = parts.path if "${" not in written_path else "/…"
    rest = "?…" if parts.query or parts.fragment else ""
    return f"{parts.scheme}://{parts.hostname or ''}{port}{path}{rest}"
