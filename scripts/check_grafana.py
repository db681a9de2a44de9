#!/usr/bin/env python3
"""Check the Grafana dashboard's structure, or list its PromQL expressions.

    scripts/check_grafana.py [FILE]                  # validate; exit 0 ok, 1 problems, 2 unreadable
    scripts/check_grafana.py --exprs [FILE]          # TITLE<TAB>EXPR, one target per line
    scripts/check_grafana.py --exprs --resolve [--var relay=guard1] [FILE]
                                                     # the same, with dashboard variables replaced so
                                                     # each expression can be sent to Prometheus as is

FILE defaults to deploy/grafana/flowmeter.json beside this script. What is checked:
the top-level fields Grafana needs, the variables `datasource` (Prometheus),
`host` (the `host` label, set at the source: `instance` is 127.0.0.1:9477 on
every host behind a vmagent or a tunnel) and `relay`, unique panel ids (rows'
nested panels included), a grid position inside the 24 columns for every panel
and no two panels overlapping, an `expr` and a unique `refId` on every target of
a data panel, the `${datasource}` variable as every data source, no `$variable`
in an expression that the dashboard does not define, `$host` only ever matched
against the `host` label, the same categories in every target of a panel that
compares counting layers (wire, payload, Tor payload), and table panels sorted by
a column they have. Standard library only.
"""

import argparse
import json
import re
import signal
import sys
from pathlib import Path

DEFAULT = Path(__file__).resolve().parent.parent / "deploy" / "grafana" / "flowmeter.json"

# Panels that show no query.
NO_TARGETS = {"row", "text", "news", "dashlist", "alertlist", "annolist"}

# Grafana's built-in variables, and what --resolve puts in their place:
# durations that make every range selector valid at any scrape interval.
BUILTINS = {
    "__rate_interval": "5m",
    "__interval": "1m",
    "__range": "1h",
    "__range_s": "3600",
    "__interval_ms": "60000",
}

VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\[\[(\w+)\]\]|\$(\w+)")

# The counters of the three counting layers; a panel that shows several must
# select the same traffic in each (like with like).
LAYERS = re.compile(r"flowmeter_(?:bytes|payload_bytes|tor_payload_bytes)_total\{([^}]*)\}")
CATEGORY = re.compile(r'category\s*(=~|=|!=|!~)\s*"([^"]*)"')
HOST_USE = re.compile(r'(\w+)\s*=~\s*"\$\{?host\}?"')


def panels_of(dashboard):
    """Every panel, rows' nested (collapsed) panels included, in order."""
    for panel in dashboard.get("panels", []):
        if not isinstance(panel, dict):
            continue
        yield panel
        inner_panels = panel.get("panels")
        for inner in inner_panels if isinstance(inner_panels, list) else []:
            if isinstance(inner, dict):
                yield inner


def variables_of(dashboard):
    return {v.get("name"): v for v in dashboard.get("templating", {}).get("list", []) if isinstance(v, dict)}


def referenced(expr):
    return {next(g for g in m.groups() if g) for m in VARIABLE.finditer(expr)}


def datasource_uid(ds):
    return ds.get("uid") if isinstance(ds, dict) else ds


def check(dashboard):
    """The list of problems found; empty when the dashboard is sound."""
    problems = []
    for key, kind in (("title", str), ("uid", str), ("schemaVersion", int), ("panels", list), ("templating", dict)):
        if not isinstance(dashboard.get(key), kind):
            problems.append(f"top level: `{key}` missing or not a {kind.__name__}")
    if problems:
        return problems

    if not all(isinstance(p, dict) for p in dashboard["panels"]):
        problems.append("panels: every entry must be an object")
    if not isinstance(dashboard["templating"].get("list"), list):
        return problems + ["templating: `list` missing or not a list"]
    variables = variables_of(dashboard)
    problems += check_variables(variables)

    seen_ids = {}
    for panel in panels_of(dashboard):
        title = panel.get("title") or "(untitled)"
        where = f"panel {panel.get('id')!r} “{title}”"
        pid = panel.get("id")
        if not isinstance(pid, int):
            problems.append(f"{where}: id missing or not an integer")
        elif pid in seen_ids:
            problems.append(f"{where}: id {pid} also used by “{seen_ids[pid]}”")
        else:
            seen_ids[pid] = title
        if not panel.get("title"):
            problems.append(f"{where}: no title")
        problems += check_grid(where, panel.get("gridPos"))
        if panel.get("type") in NO_TARGETS:
            continue
        problems += check_targets(where, panel, variables)

    problems += check_overlaps(dashboard)
    return problems


def check_variables(variables):
    problems = []
    ds = variables.get("datasource")
    if not ds or ds.get("type") != "datasource" or ds.get("query") != "prometheus":
        problems.append("variables: `datasource` must be a data source variable of type prometheus")
    host = variables.get("host")
    if not host or "label_values(flowmeter_build_info, host)" not in json.dumps(host.get("query")):
        problems.append("variables: `host` must be label_values(flowmeter_build_info, host)")
    relay = variables.get("relay")
    if not relay or not relay.get("multi") or not relay.get("includeAll"):
        problems.append("variables: `relay` must exist, be multi-valued and include All")
    elif "flowmeter_bytes_total" not in json.dumps(relay.get("query")):
        problems.append("variables: `relay` must take its values from flowmeter_bytes_total")
    for name, v in variables.items():
        if v.get("type") == "query" and datasource_uid(v.get("datasource")) != "${datasource}":
            problems.append(f"variables: `{name}` must query the ${{datasource}} variable")
    return problems


def check_grid(where, pos):
    if not isinstance(pos, dict) or not all(isinstance(pos.get(k), int) for k in "hwxy"):
        return [f"{where}: gridPos needs integer h, w, x, y"]
    if pos["x"] < 0 or pos["y"] < 0 or pos["w"] < 1 or pos["h"] < 1 or pos["x"] + pos["w"] > 24:
        return [f"{where}: gridPos {pos} is outside the 24-column grid"]
    return []


def check_targets(where, panel, variables):
    problems = []
    targets = panel.get("targets")
    if not isinstance(targets, list) or not targets:
        return [f"{where}: no targets"]
    if datasource_uid(panel.get("datasource")) not in (None, "${datasource}"):
        problems.append(f"{where}: data source is not ${{datasource}}")
    ref_ids = set()
    for i, target in enumerate(targets):
        if not isinstance(target, dict):
            problems.append(f"{where}, target {i}: not an object")
            continue
        at = f"{where}, target {target.get('refId', i)}"
        expr = target.get("expr")
        if not isinstance(expr, str) or not expr.strip():
            problems.append(f"{at}: no expr")
            continue
        if target.get("refId") in ref_ids or not target.get("refId"):
            problems.append(f"{at}: refId missing or repeated")
        ref_ids.add(target.get("refId"))
        if datasource_uid(target.get("datasource")) not in (None, "${datasource}"):
            problems.append(f"{at}: data source is not ${{datasource}}")
        unknown = sorted(referenced(expr) - set(variables) - set(BUILTINS))
        if unknown:
            problems.append(f"{at}: undefined variable(s) {', '.join('$' + u for u in unknown)}")
        for label in HOST_USE.findall(expr):
            if label != "host":
                problems.append(f"{at}: $host is matched against `{label}`; it holds `host` label values")
    problems += check_layers(where, targets)
    if panel.get("type") == "table":
        problems += check_table_sort(where, panel)
    return problems


def check_layers(where, targets):
    """Every counting-layer selector of one panel names the same categories."""
    selections = set()
    for target in targets:
        if isinstance(target, dict):
            for matchers in LAYERS.findall(str(target.get("expr", ""))):
                selections.add(tuple(sorted(CATEGORY.findall(matchers))))
    if len(selections) > 1:
        shown = "; ".join(", ".join(f"category{op}{v!r}" for op, v in s) or "all categories" for s in sorted(selections))
        return [f"{where}: compares counting layers over different categories ({shown})"]
    return []


def check_table_sort(where, panel):
    """A table's sortBy names a column its transformations produce."""
    columns = set()
    for t in panel.get("transformations") or []:
        if isinstance(t, dict) and t.get("id") == "organize":
            columns |= set((t.get("options") or {}).get("renameByName", {}).values())
    problems = []
    for sort in (panel.get("options") or {}).get("sortBy") or []:
        name = sort.get("displayName") if isinstance(sort, dict) else None
        if columns and name not in columns:
            problems.append(f"{where}: sorted by “{name}”, which is not one of its columns ({', '.join(sorted(columns))})")
    return problems


def check_overlaps(dashboard):
    """Top-level panels only: a collapsed row's panels are laid out when it opens."""
    problems, cells = [], {}
    for index, panel in enumerate(dashboard.get("panels", [])):
        pos = panel.get("gridPos") if isinstance(panel, dict) else None
        if check_grid("", pos):
            continue
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                other, title = cells.setdefault((x, y), (index, panel.get("title")))
                if other != index:
                    problems.append(f"panel “{panel.get('title')}” overlaps “{title}”")
                    break
            else:
                continue
            break
    return problems


def resolve(expr, variables, overrides):
    """Replace each variable by a value Prometheus accepts: an override, the
    variable's All value, or `.*`; built-ins by fixed durations."""
    def value(name):
        if name in overrides:
            return overrides[name]
        if name in BUILTINS:
            return BUILTINS[name]
        v = variables.get(name, {})
        return v.get("allValue") or ".*"

    return VARIABLE.sub(lambda m: value(next(g for g in m.groups() if g)), expr)


def expressions(dashboard, do_resolve, overrides):
    variables = variables_of(dashboard)
    for panel in panels_of(dashboard):
        if panel.get("type") in NO_TARGETS:
            continue
        for target in panel.get("targets", []) or []:
            if not isinstance(target, dict):
                continue
            expr = " ".join(str(target.get("expr", "")).split())
            if do_resolve:
                expr = resolve(expr, variables, overrides)
            yield panel.get("title", ""), expr


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("file", nargs="?", default=str(DEFAULT), help="dashboard JSON (default: %(default)s)")
    parser.add_argument("--exprs", action="store_true", help="print TITLE<TAB>EXPR for every target")
    parser.add_argument("--resolve", action="store_true", help="with --exprs: replace dashboard variables")
    parser.add_argument("--var", action="append", default=[], metavar="NAME=VALUE",
                        help="with --resolve: the value of one variable (repeatable)")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `--exprs | head` ends quietly

    overrides = {}
    for item in args.var:
        name, sep, value = item.partition("=")
        if not sep or not name:
            parser.error(f"--var expects NAME=VALUE, got {item!r}")
        overrides[name] = value

    try:
        with open(args.file, encoding="utf-8") as f:
            dashboard = json.load(f)
    except OSError as e:
        print(f"{args.file}: cannot read: {e.strerror}", file=sys.stderr)
        return 2
    except json.JSONDecodeError as e:
        print(f"{args.file}: not JSON: {e.msg} at line {e.lineno}, column {e.colno}", file=sys.stderr)
        return 2
    if not isinstance(dashboard, dict):
        print(f"{args.file}: not a dashboard (the top level is not an object)", file=sys.stderr)
        return 2

    problems = check(dashboard)
    for p in problems:
        print(f"{args.file}: {p}", file=sys.stderr)
    if problems:
        return 1
    if args.exprs:
        for title, expr in expressions(dashboard, args.resolve, overrides):
            print(f"{title}\t{expr}")
    else:
        count = sum(1 for _ in expressions(dashboard, False, {}))
        print(f"{args.file}: ok, {sum(1 for _ in panels_of(dashboard))} panels, {count} expressions")
    return 0


if __name__ == "__main__":
    sys.exit(main())
