#!/usr/bin/env python3
"""No function over 60 lines and no source file over 500 lines in Sources/,
except where a comment says why splitting would hurt: a line starting with
`// Kept whole:` among the comments just above the function (or, for a file, in
its first ten lines). Counted from the declaration to its closing brace."""
import re
import subprocess
import sys

MAX_FUNCTION, MAX_FILE = 60, 500
DECL = re.compile(r'^\s*(@[\w()]+\s+)*((public|private|fileprivate|internal|static|class|mutating|override|final|'
                  r'nonisolated|convenience|required)\s+)*(func|init)\b')


def code_of(line):
    return re.sub(r'"(\\.|[^"\\])*"', '""', line).split('//')[0]


def kept_whole(lines, i, reach=None):
    """A `// Kept whole:` line in the first `reach` lines of the file, or,
    without `reach`, in the comments and attributes just above line `i`."""
    if reach is not None:
        return any(l.strip().startswith('// Kept whole:') for l in lines[:reach])
    j = i - 1
    while j >= 0 and (lines[j].strip().startswith(('//', '@'))):
        if lines[j].strip().startswith('// Kept whole:'):
            return True
        j -= 1
    return False


def functions(lines):
    i = 0
    while i < len(lines):
        if not DECL.match(lines[i]):
            i += 1
            continue
        depth, started, j = 0, False, i
        while j < len(lines):
            for ch in code_of(lines[j]):
                if ch == '{':
                    depth, started = depth + 1, True
                elif ch == '}':
                    depth -= 1
            if started and depth <= 0:
                break
            if not started and j > i + 8:   # a protocol requirement: no body
                break
            j += 1
        if started:
            yield i, j - i + 1
            i = j + 1
        else:
            i += 1


def main():
    files = subprocess.run(['git', 'ls-files', 'Sources/*.swift'], capture_output=True, text=True, check=True).stdout.split()
    problems = []
    for path in files:
        lines = open(path, encoding='utf-8').read().split('\n')
        if len(lines) > MAX_FILE and not kept_whole(lines, 0, reach=10):
            problems.append(f'{path}: {len(lines)} lines (at most {MAX_FILE}, or a "// Kept whole:" reason in its first lines)')
        for start, length in functions(lines):
            if length > MAX_FUNCTION and not kept_whole(lines, start):
                problems.append(f'{path}:{start + 1}: a function of {length} lines (at most {MAX_FUNCTION}, '
                                f'or a "// Kept whole:" reason just above it)')
    if problems:
        print('check_sizes: too long:\n' + '\n'.join(problems))
        sys.exit(1)
    print(f'check_sizes: no function over {MAX_FUNCTION} lines, no file over {MAX_FILE}, '
          f'except where a comment says why ({len(files)} files read)')


main()
