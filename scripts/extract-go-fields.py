#!/usr/bin/env python3
"""Extract the Go field facts of the Kubernetes API types from Go client binaries.

kubox decodes protobuf request bodies by a table generated from the k8s-pb crate
(scripts/gen-protobuf-schema.py). The wire format cannot tell a Go pointer field that was set to
its zero value (`replicas: 0`) from a plain field that gogo-protobuf always writes (`generateName:
""`), and neither k8s-pb nor k8s-openapi records which Go fields are pointers or `omitempty`. The
Go binaries of real clients do: every Go program keeps, for reflection, each struct type's fields
with their names, struct tags (`json:"replicas,omitempty" protobuf:"varint,1,opt,name=replicas"`)
and types (`*int32`). This script reads them from statically linked, non-PIE linux/amd64 Go
binaries (Go 1.20 or later runtime type layout) and writes one line per protobuf-tagged field:

    message <TAB> proto field <TAB> proto tag <TAB> go field <TAB> go type <TAB> json tag

where message is the protobuf message name (`k8s.io.api.apps.v1.DeploymentSpec`).

Usage (from the workspace root; the binaries come from scripts/install-tools):

    python3 scripts/extract-go-fields.py .tools/bin/kubectl-1.35 .tools/bin/helm \
        > scripts/protobuf-go-fields.tsv

kubectl carries k8s.io/api and k8s.io/apimachinery; helm adds k8s.io/apiextensions-apiserver.
Types found in several binaries must agree. Only the Python standard library is used.
"""

import struct
import sys


class Binary:
    """A Go ELF binary with its runtime type region located."""

    def __init__(self, path):
        self.path = path
        with open(path, "rb") as f:
            self.data = f.read()
        d = self.data
        if d[:4] != b"\x7fELF" or d[4] != 2 or d[5] != 1:
            raise SystemExit(f"{path}: not a 64-bit little-endian ELF file")
        shoff = struct.unpack_from("<Q", d, 0x28)[0]
        shentsize, shnum, shstrndx = struct.unpack_from("<HHH", d, 0x3A)
        secs = []
        for i in range(shnum):
            name, typ, _flags, addr, off, size = struct.unpack_from("<IIQQQQ", d, shoff + i * shentsize)
            secs.append((name, typ, addr, off, size))
        strtab_off = secs[shstrndx][3]

        def sname(n):
            o = strtab_off + n
            return d[o : d.index(b"\0", o)].decode()

        self.sections = {sname(s[0]): s for s in secs}
        # Mapped sections with file contents (SHT_NOBITS = 8 has none).
        self.mapped = [s for s in secs if s[2] and s[1] != 8]
        typelink = self.sections.get(".typelink")
        if typelink is None:
            raise SystemExit(f"{path}: no .typelink section (not a Go binary, or PIE)")
        # runtime.firstmoduledata holds `types, etypes, rodata, gofunc uintptr; textsectmap
        # []textsect; typelinks []int32`: find the typelinks slice header and step back.
        count = typelink[4] // 4
        needle = struct.pack("<QQQ", typelink[2], count, count)
        for sec in (".noptrdata", ".data"):
            s = self.sections.get(sec)
            if s is None:
                continue
            i = d.find(needle, s[3], s[3] + s[4])
            if i >= 0:
                self.types, self.etypes = struct.unpack_from("<QQ", d, i - 56)
                break
        else:
            raise SystemExit(f"{path}: runtime module data not found")

    def off(self, vaddr):
        for _n, _t, addr, off, size in self.mapped:
            if addr <= vaddr < addr + size:
                return vaddr - addr + off
        raise ValueError(f"address {vaddr:#x} not mapped")

    def varint(self, o):
        r = shift = 0
        while True:
            b = self.data[o]
            o += 1
            r |= (b & 0x7F) << shift
            shift += 7
            if b < 0x80:
                return r, o

    def name(self, vaddr):
        """A runtime `abi.Name`: flags, varint length, bytes, then an optional varint-length tag."""
        o = self.off(vaddr)
        flags = self.data[o]
        n, o = self.varint(o + 1)
        text = self.data[o : o + n].decode("utf-8", "replace")
        tag = ""
        if flags & 2:
            tn, o2 = self.varint(o + n)
            tag = self.data[o2 : o2 + tn].decode("utf-8", "replace")
        return text, tag

    def type_string(self, tvaddr):
        o = self.off(tvaddr)
        tflag = self.data[o + 20]
        str_off = struct.unpack_from("<i", self.data, o + 40)[0]
        s = self.name(self.types + str_off)[0]
        return s[1:] if tflag & 2 else s  # TFlagExtraStar

    def pkg_path(self, tvaddr):
        """The package path from the uncommon type that follows a named struct type."""
        o = self.off(tvaddr)
        if not self.data[o + 20] & 1:  # TFlagUncommon
            return None
        pk = struct.unpack_from("<i", self.data, o + 80)[0]
        return self.name(self.types + pk)[0] if pk else None

    def structs(self):
        """Yield (package path, type name, [(field, go type, tag)]) for every named struct type."""
        d = self.data
        lo = self.off(self.types)
        hi = lo + (self.etypes - self.types)
        for o in range(lo, hi - 88, 8):
            if d[o + 23] & 0x1F != 25:  # abi.Struct
                continue
            fp, fl, fc = struct.unpack_from("<QQQ", d, o + 56)
            if fl != fc or not 0 < fl <= 512 or not self.types <= fp < self.etypes:
                continue
            tv = o - lo + self.types
            try:
                tname = self.type_string(tv)
                pkg = self.pkg_path(tv)
                if not pkg or not pkg.startswith("k8s.io/"):
                    continue
                fo = self.off(fp)
                fields = []
                for k in range(fl):
                    nv, typ, _offset = struct.unpack_from("<QQQ", d, fo + 24 * k)
                    fname, tag = self.name(nv)
                    fields.append((fname, self.type_string(typ), tag))
            except (ValueError, IndexError, UnicodeDecodeError, struct.error):
                continue
            yield pkg, tname.rsplit(".", 1)[-1], fields


def tag_value(tag, key):
    """The value of `key:"..."` in a Go struct tag, or None."""
    marker = key + ':"'
    i = tag.find(marker)
    if i < 0 or (i > 0 and tag[i - 1] != " "):
        return None
    j = tag.index('"', i + len(marker))
    return tag[i + len(marker) : j]


def main(argv):
    if len(argv) < 2:
        raise SystemExit(__doc__)
    rows = {}
    for path in argv[1:]:
        b = Binary(path)
        n = 0
        for pkg, tname, fields in b.structs():
            message = pkg.replace("/", ".").replace("-", "_") + "." + tname
            for fname, gotype, tag in fields:
                pb = tag_value(tag, "protobuf")
                if pb is None or pb == "-":
                    continue
                parts = pb.split(",")
                js = tag_value(tag, "json")
                pname = next((p[5:] for p in parts if p.startswith("name=")), "")
                row = (message, pname, parts[1], fname, gotype, js if js is not None else "")
                key = (message, fname)
                if key in rows and rows[key] != row:
                    raise SystemExit(f"conflicting facts for {message}.{fname}: {rows[key]} vs {row}")
                rows[key] = row
                n += 1
        print(f"{path}: {n} protobuf fields", file=sys.stderr)
    out = sys.stdout
    out.write("# Generated by scripts/extract-go-fields.py from " + " ".join(p.rsplit("/", 1)[-1] for p in argv[1:]) + "\n")
    out.write("# message\tproto field\tproto tag\tgo field\tgo type\tjson tag\n")
    for key in sorted(rows):
        out.write("\t".join(rows[key]) + "\n")


if __name__ == "__main__":
    main(sys.argv)
