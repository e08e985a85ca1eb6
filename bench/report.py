#!/usr/bin/env python3
"""Turn bench/compare.sh's raw.jsonl into summary.md (tables) and chart.svg (one picture).

    report.py RESULTS_DIR
    report.py --keep ROUND [KEY=NUMBER ...] < LINE
                                      the load generator's JSON line as a raw.jsonl row,
                                      with any extra numeric fields
    report.py --line LABEL < LINE     that line in a few words, for the log

Rates are compared within a round (each server's rate over the floor's in the same round),
so that drift in the machine's load between rounds cancels; each ratio is the median over
rounds, with the lowest and highest round beside it. Python's standard library only.
"""

import json
import os
import statistics
import sys
from collections import defaultdict

SERVERS = ["floor", "tower", "dovecot", "wildduck"]
NAMES = {"floor": "floor", "tower": "tower-mail", "dovecot": "Dovecot", "wildduck": "WildDuck"}
REFUSALS = {"refuse-imap": "IMAP refused", "refuse-pop3": "POP3 refused", "refuse-imaps": "IMAPS refused"}
COLOURS = {"floor": "#9e9e9e", "tower": "#1565c0", "dovecot": "#ef6c00", "wildduck": "#2e7d32"}


def load(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def spread(values, digits=2):
    values = sorted(values)
    if not values:
        return "n/a"
    med = statistics.median(values)
    if len(values) == 1:
        return f"{med:.{digits}f}"
    return f"{med:.{digits}f} ({values[0]:.{digits}f}-{values[-1]:.{digits}f})"


def rate_ratios(rows, mode, floor_label="floor", floor_mode=None):
    """{label: [ratio per round]} of conn/s to the floor's in the same round."""
    floor_mode = floor_mode or mode
    floor = {r["round"]: r["conn_per_s"] for r in rows if r["mode"] == floor_mode and r["label"] == floor_label}
    ratios, rates = defaultdict(list), defaultdict(list)
    for r in rows:
        if r["mode"] == mode and r["round"] in floor:
            ratios[r["label"]].append(r["conn_per_s"] / floor[r["round"]])
            rates[r["label"]].append(r["conn_per_s"])
    return ratios, rates


def keep(round_name, extra):
    row = json.load(sys.stdin)["load"]
    row["round"] = round_name
    for pair in extra:
        key, value = pair.split("=", 1)
        row[key] = float(value) if "." in value else int(value)
    print(json.dumps(row))


def line(label):
    d = json.load(sys.stdin)["load"]
    if d["mode"] in ("imap-greet", "pop3-greet", "refusal"):
        text = "%.0f conn/s, p99 %s ms" % (d["conn_per_s"], d["latency"]["p99_ms"])
    elif d["mode"] in ("idle", "idle-tls"):
        text = "%s: %s KiB PSS, %s KiB RSS per connection" % (d["protocol"], d["pss_kib_per_conn"], d["rss_kib_per_conn"])
    else:
        text = ", ".join("%s: %s ms" % (k, v["p50_ms"]) for k, v in d["steps"].items())
    print("  %-16s %s" % (label, text))


def main():
    if sys.argv[1] == "--keep":
        return keep(sys.argv[2], sys.argv[3:])
    if sys.argv[1] == "--line":
        return line(sys.argv[2])
    out = sys.argv[1]
    rows = load(os.path.join(out, "raw.jsonl"))
    md = []
    chart = {}

    md.append("### Connection rate, as a share of the floor (same round)\n")
    md.append("| load | " + " | ".join(NAMES[s] for s in SERVERS) + " |")
    md.append("|---|" + "---|" * len(SERVERS))
    for mode, title in [("imap-greet", "IMAP connect, greeting, LOGOUT"), ("pop3-greet", "POP3 connect, greeting, QUIT")]:
        ratios, rates = rate_ratios(rows, mode)
        cells = []
        for s in SERVERS:
            cells.append(f"{spread(ratios[s])}x, {statistics.median(rates[s]):.0f}/s" if rates[s] else "n/a")
        md.append(f"| {title} | " + " | ".join(cells) + " |")
        chart[mode] = {s: statistics.median(ratios[s]) for s in SERVERS if ratios[s]}
    md.append("")
    md.append("Each cell: the median ratio over rounds (lowest-highest round), then the median rate.\n")

    md.append("### Refusals (tower-mail's IP block), as a share of the floor's IMAP greeting rate\n")
    md.append("| listener | ratio | conn/s |")
    md.append("|---|---|---|")
    chart["refusal"] = {}
    for label, title in [("refuse-imap", "plain IMAP (`* BYE`)"), ("refuse-pop3", "plain POP3 (`-ERR`)"), ("refuse-imaps", "implicit TLS (closed before the handshake)")]:
        ratios, rates = rate_ratios(rows, "refusal", floor_label="floor-imap", floor_mode="imap-greet")
        if rates[label]:
            md.append(f"| {title} | {spread(ratios[label])}x | {statistics.median(rates[label]):.0f} |")
            chart["refusal"][label] = statistics.median(ratios[label])
    md.append("")

    md.append("### Memory per idle connection (KiB; proportional set size, resident in brackets)\n")
    md.append("| state | " + " | ".join(NAMES[s] for s in SERVERS) + " |")
    md.append("|---|" + "---|" * len(SERVERS))
    chart["memory"] = {}
    for key, title, suffix, protocol in [
        ("imap", "IMAP, before login", "", "imap"),
        ("pop3", "POP3, before login", "", "pop3"),
        ("login", "IMAP, after LOGIN + SELECT", "-login", "imap"),
        ("tls", "IMAP over implicit TLS, before login", "", "imap-tls"),
        ("login-big", "IMAP, after LOGIN + SELECT of the large INBOX (1,000 sessions)", "-login-big", "imap"),
    ]:
        cells = []
        chart["memory"][key] = {}
        for s in SERVERS:
            runs = [r for r in rows if memory_row(r, s + suffix, protocol)]
            if not runs:
                cells.append("n/a")
                continue
            pss = [r["pss_kib_per_conn"] for r in runs]
            rss = [r["rss_kib_per_conn"] for r in runs]
            procs = max(r.get("processes_after", 1) for r in runs)
            note = f", {procs} processes" if procs > 1 else ""
            cells.append(f"{spread(pss, 1)} [{spread(rss, 1)}]{note}")
            chart["memory"][key][s] = statistics.median(pss)
        md.append(f"| {title} | " + " | ".join(cells) + " |")
    md.append("")

    md.append("### Whole-mailbox FETCH (ms; tower-mail / Dovecot in the last column)\n")
    md.append("| command | when | tower-mail | Dovecot | ratio |")
    md.append("|---|---|---|---|---|")
    chart["fetch"] = {}
    for step in ["UID FETCH 1:* (FLAGS ENVELOPE)", "FETCH 1:* (BODYSTRUCTURE)"]:
        for when, test in [
            ("first open", lambda r: r == "first"),
            ("warm", lambda r: r.isdigit()),
            ("after a restart", lambda r: r.startswith("restart")),
        ]:
            times = {}
            for s in ["tower", "dovecot"]:
                times[s] = [
                    r["steps"][step]["p50_ms"]
                    for r in rows
                    if r["mode"] == "imap-fetch" and r["label"] == s and test(str(r["round"]))
                ]
            if times["tower"] and times["dovecot"]:
                ratio = statistics.median(times["tower"]) / statistics.median(times["dovecot"])
                md.append(f"| `{step}` | {when} | {spread(times['tower'], 0)} | {spread(times['dovecot'], 0)} | {ratio:.2f}x |")
                short = step.replace(" 1:*", "")
                chart["fetch"][f"{short}, {when}"] = {s: statistics.median(times[s]) for s in times}
    # The 10,000-message runs only (the sweep's are in the growth tables).
    counts = {r["label"]: r.get("fetch_responses") for r in rows if r["mode"] == "imap-fetch" and r["label"] in ("tower", "dovecot")}
    chart["messages"] = "{:,}".format(max(counts.values(), default=0) // 2)
    md.append("")
    md.append(f"FETCH responses per session (both commands): {counts}\n")

    md.append("### POP3 RETR of the large message (ms, p50 of each run)\n")
    retr = {s: [r["steps"]["RETR"]["p50_ms"] for r in rows if r["mode"] == "pop3-retr" and r["label"] == s] for s in ["tower", "dovecot"]}
    if retr["tower"] and retr["dovecot"]:
        ratio = statistics.median(retr["tower"]) / statistics.median(retr["dovecot"])
        md.append(f"tower-mail {spread(retr['tower'], 1)}, Dovecot {spread(retr['dovecot'], 1)}: {ratio:.2f}x\n")

    md.extend(growth(rows))

    with open(os.path.join(out, "summary.md"), "w") as f:
        f.write("\n".join(md))
    with open(os.path.join(out, "chart.svg"), "w") as f:
        f.write(svg(chart))
    print("\n".join(md))
    print(f"\nwritten: {out}/summary.md, {out}/chart.svg")


def memory_row(r, label, protocol):
    """Whether `r` is an idle-memory run of `label`; protocol "imap-tls" is idle_tls.py's."""
    if protocol == "imap-tls":
        return r["mode"] == "idle-tls" and r["label"] == label
    return r["mode"] == "idle" and r["label"] == label and r.get("protocol") == protocol


def growth(rows):
    """The tables of bench/growth.sh: cost against clients at once, connections, cycles and
    messages."""
    md = []
    by_clients = defaultdict(dict)
    labels = ("floor-clients", "tower-clients", "tower-deep-clients")
    for r in rows:
        if r["mode"] == "imap-greet" and r["label"] in labels:
            by_clients[int(r["round"])][r["label"]] = r
    if by_clients:
        md.append("### Connection rate by clients at once (IMAP greeting, `LOGOUT`)\n")
        md.append(
            "Each cell: conn/s (p50 ms, p99 ms; connections the kernel dropped from a full listen queue); "
            "then the server's CPU time per connection, user + system, microseconds.\n"
        )
        md.append("| at once | floor | tower-mail | tower-mail / floor | tower-mail, listen queue 65,535 |")
        md.append("|---|---|---|---|---|")
        for clients in sorted(by_clients):
            cell = {}
            for label in labels:
                r = by_clients[clients].get(label)
                cell[label] = (
                    f"{r['conn_per_s']:.0f} ({r['latency']['p50_ms']:.1f}, {r['latency']['p99_ms']:.1f}; "
                    f"{r.get('listen_overflows', 'n/a')}); "
                    f"{r.get('server_user_us_per_conn', 0):.1f} + {r.get('server_sys_us_per_conn', 0):.1f} us"
                    if r else "n/a"
                )
            f, t = by_clients[clients].get("floor-clients"), by_clients[clients].get("tower-clients")
            ratio = f"{t['conn_per_s'] / f['conn_per_s']:.2f}x" if f and t else "n/a"
            md.append(f"| {clients:,} | {cell[labels[0]]} | {cell[labels[1]]} | {ratio} | {cell[labels[2]]} |")
        md.append("")
    idle = sorted((int(r["round"]), r) for r in rows if r["mode"] == "idle" and r["label"] == "tower-idle-count")
    if idle:
        md.append("### Memory by idle connections (tower-mail, IMAP before login, a fresh process each)\n")
        md.append("| connections | resident after, KiB | per connection, KiB | per connection more than the row above, KiB |")
        md.append("|---|---|---|---|")
        previous = None
        for count, r in idle:
            step = "" if previous is None else f"{(r['rss_kib_after'] - previous[1]) / (count - previous[0]):.2f}"
            md.append(f"| {count:,} | {r['rss_kib_after']:,} | {r['rss_kib_per_conn']:.2f} | {step} |")
            previous = (count, r["rss_kib_after"])
        md.append("")
    cycles = sorted((int(r["round"]), r["rss_kib"]) for r in rows if r["mode"] == "cycles")
    if cycles:
        md.append("### Resident memory over connect/close cycles (tower-mail, IMAP and POP3 alternating)\n")
        md.append("| cycles | " + " | ".join(f"{c:,}" for c, _ in cycles) + " |")
        md.append("|---|" + "---|" * len(cycles))
        md.append("| resident, MB | " + " | ".join(f"{kib / 1024:.1f}" for _, kib in cycles) + " |")
        md.append("")
    sweep = defaultdict(lambda: defaultdict(list))
    for r in rows:
        if r["mode"] == "imap-fetch" and r["label"] in ("tower-sweep", "dovecot-sweep"):
            count, when = str(r["round"]).split("-", 1)
            if when != "first":
                for step, figures in r["steps"].items():
                    if "FETCH 1:*" in step:
                        sweep[int(count)][(r["label"], step)].append(figures["p50_ms"])
    if sweep:
        steps = ["UID FETCH 1:* (FLAGS ENVELOPE)", "FETCH 1:* (BODYSTRUCTURE)"]
        md.append("### Warm whole-mailbox FETCH by messages in the mailbox (ms; microseconds per message in brackets)\n")
        md.append("| messages | " + " | ".join(f"`{s.replace(' 1:*', '')}` {who}" for s in steps for who in ("tower-mail", "Dovecot")) + " |")
        md.append("|---|" + "---|" * 4)
        for count in sorted(sweep):
            cells = []
            for step in steps:
                for label in ("tower-sweep", "dovecot-sweep"):
                    times = sweep[count].get((label, step))
                    if times:
                        ms = statistics.median(times)
                        cells.append(f"{ms:.1f} ({1000 * ms / count:.1f})")
                    else:
                        cells.append("n/a")
            md.append(f"| {count:,} | " + " | ".join(cells) + " |")
        md.append("")
    return md


def panel(x0, title, groups, unit, fmt, reference=None):
    """A bar panel: groups of bars (one per server), scaled to the largest value."""
    width, bar, gap = 300, 14, 18
    parts = [f'<text x="{x0}" y="30" class="t">{title}</text>']
    top = max((v for g in groups.values() for v in g.values()), default=1) or 1
    if reference:
        top = max(top, reference)
    y = 50
    for group, values in groups.items():
        parts.append(f'<text x="{x0}" y="{y + 10}" class="g">{group}</text>')
        y += 16
        for s in SERVERS + ["refuse-imap", "refuse-pop3", "refuse-imaps"]:
            if s not in values:
                continue
            w = values[s] / top * width
            colour = COLOURS.get(s, COLOURS["tower"])
            name = NAMES.get(s, REFUSALS.get(s, s))
            parts.append(f'<rect x="{x0 + 90}" y="{y}" width="{w:.1f}" height="{bar}" fill="{colour}"/>')
            parts.append(f'<text x="{x0 + 86}" y="{y + 11}" class="l" text-anchor="end">{name}</text>')
            parts.append(f'<text x="{x0 + 94 + w:.1f}" y="{y + 11}" class="v">{fmt(values[s])}{unit}</text>')
            y += bar + 3
        y += gap - 3
    if reference:
        rx = x0 + 90 + reference / top * width
        parts.append(f'<line x1="{rx:.1f}" y1="45" x2="{rx:.1f}" y2="{y}" stroke="#000" stroke-dasharray="3,3"/>')
    return parts, y


def svg(chart):
    parts, heights = [], []
    rate_groups = {
        "IMAP greet + LOGOUT": chart.get("imap-greet", {}),
        "POP3 greet + QUIT": chart.get("pop3-greet", {}),
        "refusals (vs floor IMAP greet)": chart.get("refusal", {}),
    }
    p, h = panel(10, "Connections/s as a share of the floor (dashed: 1.0)", rate_groups, "x", lambda v: f"{v:.2f}", reference=1.0)
    parts += p; heights.append(h)
    memory = chart.get("memory", {})
    mem_groups = {"IMAP before login": memory.get("imap", {}), "POP3 before login": memory.get("pop3", {})}
    p, h = panel(470, "Memory per idle connection, KiB (PSS)", mem_groups, "", lambda v: f"{v:.1f}")
    parts += p; heights.append(h)
    login = {"IMAP after LOGIN + SELECT": memory.get("login", {})}
    p, h2 = panel(470, "", login, "", lambda v: f"{v:.0f}")
    # Logged-in memory differs by orders of magnitude: its own scale, below the first.
    shift = h + 10
    parts.append(f'<g transform="translate(0,{shift - 40})">' + "".join(p) + "</g>")
    heights.append(shift - 40 + h2)
    messages = chart.get("messages", "")
    p, h = panel(930, f"Whole-mailbox FETCH, {messages} messages, ms", chart.get("fetch", {}), "", lambda v: f"{v:.0f}")
    parts += p; heights.append(h)
    height = max(heights) + 20
    style = (
        "<style>text{font-family:sans-serif;font-size:11px}.t{font-size:13px;font-weight:bold}"
        ".g{font-weight:bold}.v{fill:#333}</style>"
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="1400" height="{height}" viewBox="0 0 1400 {height}">'
        f'<rect width="100%" height="100%" fill="#fff"/>{style}' + "".join(parts) + "</svg>\n"
    )


if __name__ == "__main__":
    main()
