"""Questions about the profile's file tree and key families that cases, host and card share.

Pure functions of a :class:`~conformance.model.profile.CardProfile`: which EFs a DF holds,
which FIDs SELECT can find from a DF (REFERENCE.md §5 lookup order), which keys a DF has, which
files a key opens. They answer from the YAML only, so every layer asks the same question the
same way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from conformance.iso7816 import MF_FID
from conformance.model.schema import KeyUse, Structure

if TYPE_CHECKING:
    from conformance.model.profile import CardProfile

__all__ = [
    "MF",
    "RIGHTS",
    "all_fids",
    "auth_families",
    "child_dfs",
    "df_names",
    "df_of",
    "fid_of",
    "files_of",
    "foreign_ef_fids",
    "free_read_ef",
    "index_files",
    "index_flags",
    "indexed_files",
    "neighbour_df",
    "other_keys",
    "parent_of",
    "reachable_fids",
    "read_key",
    "record_files",
    "rights_of",
    "transparent_files",
]

MF = "MF"
"""The profile's name for the root DF (the ``parent`` of top-level DFs)."""

RIGHTS = ("read", "update", "mark", "erase")
"""The fields of a file's access rule, in the order the cases walk them."""


# -- DFs ----------------------------------------------------------------------------------
def df_of(path: str) -> str:
    """'DF02/EF07' → 'DF02' (a DF name is its own DF)."""
    return path.partition("/")[0]


def df_names(profile: CardProfile) -> list[str]:
    """MF and every DF of the profile, top down."""
    return [MF, *profile.dfs]


def fid_of(profile: CardProfile, df: str) -> str:
    return MF_FID if df == MF else profile.df(df).fid


def parent_of(profile: CardProfile, df: str) -> str | None:
    return None if df == MF else profile.df(df).parent


def child_dfs(profile: CardProfile, df: str) -> list[str]:
    return [n for n, d in profile.dfs.items() if d.parent == df]


def neighbour_df(profile: CardProfile, df: str) -> str | None:
    """Another DF selectable directly from ``df`` (REFERENCE.md §5 SELECT lookup): a sibling
    under the same parent, else a child, else the parent; None if there is none."""
    parent = profile.df(df).parent
    siblings = [n for n, d in profile.dfs.items() if d.parent == parent and n != df]
    children = child_dfs(profile, df)
    for candidates in (siblings, children):
        if candidates:
            return candidates[0]
    return parent if parent in profile.dfs else None


# -- FIDs SELECT finds ---------------------------------------------------------------------
def reachable_fids(profile: CardProfile, df: str) -> set[str]:
    """FIDs SELECT finds while `df` is current (REFERENCE.md §5 lookup order)."""
    found = {MF_FID, fid_of(profile, df)}
    found |= {profile.df(n).fid for n in child_dfs(profile, df)}
    found |= {profile.file(p).fid for p in files_of(profile, df)}
    up = parent_of(profile, df)
    if up is not None:
        found.add(fid_of(profile, up))
        found |= {profile.df(n).fid for n in child_dfs(profile, up)}
    return found


def all_fids(profile: CardProfile) -> set[str]:
    return (
        {MF_FID}
        | {d.fid for d in profile.dfs.values()}
        | {ef.fid for ef in profile.files.values()}
    )


def foreign_ef_fids(profile: CardProfile, df: str) -> list[str]:
    """EF FIDs of the profile that are not children of `df` (so SELECT must not find them)."""
    own = {profile.file(p).fid for p in files_of(profile, df)}
    dfs = {d.fid for d in profile.dfs.values()} | {MF_FID}
    return sorted({ef.fid for ef in profile.files.values()} - own - dfs)


# -- EFs ----------------------------------------------------------------------------------
def files_of(profile: CardProfile, df: str) -> list[str]:
    """The EFs of a DF (its children), in profile order."""
    return [path for path in profile.files if df_of(path) == df]


def record_files(profile: CardProfile, df: str | None = None) -> list[str]:
    """Record-structured EFs (TLV, cyclic, linear fixed), of one DF or of all."""
    return [
        p
        for p, ef in profile.files.items()
        if ef.structure is not Structure.TRANSPARENT and (df is None or df_of(p) == df)
    ]


def transparent_files(profile: CardProfile, df: str | None = None) -> list[str]:
    return [
        p
        for p, ef in profile.files.items()
        if ef.structure is Structure.TRANSPARENT and (df is None or df_of(p) == df)
    ]


def free_read_ef(profile: CardProfile, df: str) -> str | None:
    """A record file of `df` that is free to read (a proof that `df` is current), if any."""
    for path in files_of(profile, df):
        ef = profile.file(path)
        if ef.access.read == "free" and ef.structure is not Structure.TRANSPARENT:
            return path
    return None


def indexed_files(profile: CardProfile) -> list[str]:
    """The files the index files point at (EE0n, ED0n), in index order."""
    out: list[str] = []
    for path, ef in profile.files.items():
        df = df_of(path)
        out.extend(f"{df}/{fid}" for fid in ef.index_of if f"{df}/{fid}" in profile.files)
    return out


def index_files(profile: CardProfile) -> list[str]:
    """Linear-fixed files changed only by mark / erase (DF03/EF05, EF06)."""
    return [
        p
        for p, ef in profile.files.items()
        if ef.structure is Structure.LINEAR_FIXED and ef.access.mark and ef.access.erase
    ]


def index_flags(profile: CardProfile, path: str) -> tuple[bytes, bytes]:
    """(used, free) record contents of an index file: the first two values of its flag
    item's code table, repeated to the record length."""
    ef = profile.file(path)
    length = ef.record_length or 1
    for number in ef.items:
        for rule in profile.item(number).rules:
            kind, _, table = rule.partition(":")
            values = profile.spec.code_tables[table].values if kind == "code" else None
            if values and len(values) >= 2:
                return bytes.fromhex(values[0]) * length, bytes.fromhex(values[1]) * length
    raise ValueError(f"{path}: its item has no code table of (used, free) flags")


# -- key families ---------------------------------------------------------------------------
def auth_families(profile: CardProfile) -> list[str]:
    """Key families a terminal authenticates (RK_*, UK_*): those with a KID, profile order."""
    return [name for name, key in profile.keys.items() if key.kid is not None]


def read_key(profile: CardProfile, df: str) -> str | None:
    """The read key (RK) of a DF: the first read-use family with a KID there."""
    for name, key in profile.keys.items():
        if key.df == df and key.use is KeyUse.READ and key.kid is not None:
            return name
    return None


def other_keys(profile: CardProfile, path: str, *excluded: str | None) -> list[str]:
    """Every key of the file's DF that EXTERNAL AUTHENTICATE can grant, but ``excluded``."""
    df = df_of(path)
    return [
        name
        for name, key in profile.keys.items()
        if key.df == df and key.kid is not None and name not in excluded
    ]


def rights_of(profile: CardProfile, family: str) -> list[tuple[str, str]]:
    """(path, right) pairs a key family opens, rights in the order read/update/mark/erase."""
    return [
        (path, right)
        for right in RIGHTS
        for path, ef in profile.files.items()
        if getattr(ef.access, right) == family
    ]
