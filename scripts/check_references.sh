#!/usr/bin/env bash
# The repository must stand alone. Exits 1, listing each offence, when a
# tracked text file
#   1. names a path outside the repository in its documentation or comments:
#      a "shared" directory beside the checkout, /work/ or /tmp/ (paths of
#      the machine it was written on);
#      code that builds a temporary path at run time is not documentation
#      and is left alone, and a line marked "check_references: allow" is
#      skipped;
#   2. cites a section of a Markdown document ("docs/tor-facts.md §2.4",
#      "tor-facts.md §2.3–2.5") that does not exist, or a document the
#      repository does not hold. Inside a Markdown file a bare "§1.4" cites
#      that file itself, unless it follows a spec's name ("dir-spec §3.4.1",
#      "RFC 7235 §2.1").
# Sections are the numbered headings ("## 2. …", "### 2.4 …"). Needs only
# bash, awk and git (grep without it), so CI can run it before anything is
# installed (< 1 s).
# Usage: scripts/check_references.sh
set -euo pipefail
cd "$(dirname "$0")/.."
self=scripts/check_references.sh

# search ERE: "path:line:text" of every matching line of the repository's text
# files (git's tracked files; without git, the tree minus build output).
search() {
    local out status=0
    if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
        out=$(git grep -n -I -E "$1" -- . ":!$self") || status=$?
    else
        out=$(grep -rnIE --exclude-dir='.build*' --exclude-dir=.git --exclude-dir=out \
              --exclude-dir=.swiftpm "$1" . | sed 's|^\./||' | grep -v "^$self:") || status=$?
    fi
    [ "$status" -le 1 ] || { echo "check_references: searching for $1 failed" >&2; exit 2; }
    [ -z "$out" ] || printf '%s\n' "$out"
}

# 1. Paths outside the repository, in documentation and comments.
outside=$(search '\.\./shared|/work/|/tmp/' | awk '
function kind(path,   name, ext, first) {
    name = path; sub(/.*\//, "", name)
    ext = (name ~ /\./) ? name : ""; sub(/.*\./, "", ext)
    if (ext ~ /^(swift|c|h|cc|cpp|m|js|ts|go|rs|java|css)$/) return "slash"
    if (ext ~ /^(sh|bash|py|yml|yaml|toml|cfg|conf|ini|rb|pl|mk)$/ || name ~ /^(Makefile|Dockerfile)$/) return "hash"
    if (ext == "") {  # a script without an extension (.ci/run, debian/rules)?
        first = ""; getline first < path; close(path)
        if (first ~ /^#!/) return "hash"
    }
    return "doc"
}
{
    c1 = index($0, ":"); path = substr($0, 1, c1 - 1)
    rest = substr($0, c1 + 1); c2 = index(rest, ":"); text = substr(rest, c2 + 1)
    if (text ~ /check_references: allow/) next
    if (!(path in style)) style[path] = kind(path)
    s = style[path]
    match(text, /\.\.\/shared|\/work\/|\/tmp\//); at = RSTART
    if (s == "slash") {
        cm = index(text, "//")
        if (!((cm > 0 && cm < at) || text ~ /^[ \t]*(\*|\/\*)/)) next
    } else if (s == "hash") {
        cm = index(text, "#")
        if (!(cm > 0 && cm < at)) next
    }
    print $0
}')
if [ -n "$outside" ]; then
    echo "Paths outside the repository (write the fact into the repository's own docs):"
    echo "$outside" | sed 's/^/  /'
fi

# 2. Section references.
broken=$(search '§' | awk '
function sections(doc,   line, n) {   # "1 1.1 1.2 …" of doc, cached
    if (doc in secs) return secs[doc]
    n = " "
    while ((getline line < doc) > 0)
        if (match(line, /^#+[ \t]+[0-9]+(\.[0-9]+)*/)) {
            line = substr(line, RSTART, RLENGTH); sub(/^#+[ \t]+/, "", line)
            n = n line " "
        }
    close(doc)
    secs[doc] = n
    return n
}
function exists(p,   line, r) {
    r = (getline line < p); close(p)
    return r >= 0
}
function resolve(name, from,   dir) {   # a cited .md name, as a repository path or ""
    dir = from; if (dir ~ /\//) sub(/\/[^\/]*$/, "", dir); else dir = "."
    if (name ~ /\// && exists(name)) return name
    if (exists(dir "/" name)) return (dir == "." ? name : dir "/" name)
    if (name !~ /\// && exists("docs/" name)) return "docs/" name
    return ""
}
function check(path, lineno, doc, num,   parts, i, have) {
    n = split(num, parts, /–|-/)
    for (i = 1; i <= n; i++) {
        have = sections(doc)
        if (index(have, " " parts[i] " ") == 0)
            printf "  %s:%s: %s has no section %s\n", path, lineno, doc, parts[i]
    }
}
{
    c1 = index($0, ":"); path = substr($0, 1, c1 - 1)
    rest = substr($0, c1 + 1); c2 = index(rest, ":"); lineno = substr(rest, 1, c2 - 1)
    text = substr(rest, c2 + 1)
    while (match(text, /§[0-9]+(\.[0-9]+)*((–|-)[0-9]+(\.[0-9]+)*)?/)) {
        before = substr(text, 1, RSTART - 1)
        num = substr(text, RSTART, RLENGTH); sub(/^§/, "", num)
        text = substr(text, RSTART + RLENGTH)
        if (match(before, /[A-Za-z0-9_.\/-]+\.md[ \t]+$/)) {
            name = substr(before, RSTART, RLENGTH); sub(/[ \t]+$/, "", name)
            doc = resolve(name, path)
            if (doc == "") { printf "  %s:%s: %s is not in the repository\n", path, lineno, name; continue }
            check(path, lineno, doc, num)
        } else if (path ~ /\.md$/) {
            word = before; sub(/[ \t]+$/, "", word); sub(/.*[ \t(]/, "", word)
            if (word ~ /spec$|^RFC$|^[0-9]+$|\.txt$|\.html?$/) continue
            check(path, lineno, path, num)
        }
    }
}')
if [ -n "$broken" ]; then
    echo "Section references that point nowhere:"
    echo "$broken"
fi

if [ -n "$outside$broken" ]; then exit 1; fi
echo "check_references: no path outside the repository; every cited section exists."
