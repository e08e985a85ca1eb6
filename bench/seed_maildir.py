#!/usr/bin/env python3
"""Seed a Maildir++ user tree for bench/compare.sh: the same files for every server.

    seed_maildir.py DIR COUNT        COUNT messages in DIR/cur (DIR/new and DIR/tmp made empty)
    seed_maildir.py DIR --big MIB    one message of MIB MiB (for POP3 RETR)

Messages are what a mailbox holds: plain text with encoded subjects, group addresses,
replies, and every fifth one multipart (text, HTML and a small attachment), so that ENVELOPE
and BODYSTRUCTURE have work to do. Half are seen. Deterministic: the same COUNT gives the
same bytes.
"""

import os
import sys


def message(i):
    header = (
        f"From: Sender {i} <sender{i}@example.com>\r\n"
        f"To: bench@example.com, Team: a@example.com, b@example.com;\r\n"
        f"Cc: \"Copy, Carbon\" <cc{i % 7}@example.org>\r\n"
        f"Subject: =?utf-8?q?Message_n=C2=B0{i}?= about the quarterly figures\r\n"
        f"Date: Tue, 24 Nov 2026 10:{i % 60:02}:00 +0100\r\n"
        f"Message-ID: <{i}@bench.example>\r\n"
    )
    if i > 0:
        header += f"In-Reply-To: <{i - 1}@bench.example>\r\n"
    header += "MIME-Version: 1.0\r\n"
    text = f"Body of message {i}.\r\n" + "Some words to make a paragraph. " * 20 + "\r\n"
    if i % 5 != 0:
        return header + "Content-Type: text/plain; charset=utf-8\r\n\r\n" + text
    boundary = f"b{i}"
    return (
        header
        + f'Content-Type: multipart/mixed; boundary="{boundary}"\r\n\r\n'
        + f"--{boundary}\r\n"
        + f'Content-Type: multipart/alternative; boundary="{boundary}a"\r\n\r\n'
        + f"--{boundary}a\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{text}"
        + f"--{boundary}a\r\nContent-Type: text/html; charset=utf-8\r\n"
        + f"Content-Transfer-Encoding: quoted-printable\r\n\r\n<p>{text}</p>\r\n"
        + f"--{boundary}a--\r\n"
        + f"--{boundary}\r\n"
        + f'Content-Type: application/pdf; name="report{i}.pdf"\r\n'
        + f'Content-Disposition: attachment; filename="report{i}.pdf"\r\n'
        + "Content-Transfer-Encoding: base64\r\n\r\n"
        + "JVBERi0xLjQKJcfsj6IKNSAwIG9iago8PC9MZW5ndGggNiAwIFI+PgpzdHJlYW0K\r\n" * 8
        + f"--{boundary}--\r\n"
    )


def big(mib):
    line = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789\r\n"
    lines = mib * 1024 * 1024 // len(line)
    return (
        "From: Big Sender <big@example.com>\r\nTo: retr@example.com\r\n"
        "Subject: a large message\r\nDate: Tue, 24 Nov 2026 10:00:00 +0100\r\n"
        "Message-ID: <big@bench.example>\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=us-ascii\r\n\r\n" + line * lines
    )


def main():
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    root = sys.argv[1]
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(root, sub), exist_ok=True)
    if sys.argv[2] == "--big":
        texts = [big(int(sys.argv[3]))]
    else:
        texts = (message(i) for i in range(int(sys.argv[2])))
    for i, text in enumerate(texts):
        data = text.encode()
        # Delivered names with the size (S=), as Dovecot and tower-mail both read it.
        name = f"{1_700_000_000 + i}.M{i}P1.bench,S={len(data)}:2,{'S' if i % 2 else ''}"
        with open(os.path.join(root, "cur", name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
