"""setup_env.bat as cmd.exe runs it, checked by its patterns (nothing here runs Windows): every
step tests for an exit status of exactly 0, and every Python runs through `call`."""

import re

from conftest import ROOT

BAT = ROOT / "setup_env.bat"
# "if errorlevel 1" means "1 or more": a Python that crashes exits with a negative status
# (0xC0000005 is -1073741819), which it takes for success
AT_LEAST = re.compile(r"^\s*if\s+(not\s+)?errorlevel\b", re.I)
# an interpreter started without `call`: where it is a .bat shim (pyenv-win), control never returns
INTERPRETER = re.compile(r'^\s*(?:if\s+.*?\)?\s+)?(call\s+)?("%PYEXE%"|%PY%|py|python)\s+-', re.I)


def problems(text):
    """[(line number, what is wrong)] for the patterns cmd.exe gets wrong."""
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.lstrip().lower().startswith("rem"):
            continue
        if AT_LEAST.match(line):
            found.append((number, "tests for 1 or more, not for exactly 0"))
        match = INTERPRETER.match(line)
        if match and not match.group(1):
            found.append((number, f"{match.group(2)} runs without call"))
    return found


def test_setup_env_bat_tests_for_exactly_zero_and_calls_every_interpreter():
    text = BAT.read_bytes().decode("utf-8")
    assert "\r\n" in text  # cmd.exe misreads labels in a file with Unix line ends
    assert problems(text) == []
    assert text.count("call ") >= 15  # the checker sees the interpreter lines it is meant to


def test_the_checker_catches_both_mistakes():
    sample = '\r\n'.join([
        'py -3.12 -m bigcats.environment.setup_plan --check-python >nul 2>&1',
        'if not errorlevel 1 set "PY=py -3.12"',
        '"%PYEXE%" -c "import tensorflow"',
        'if errorlevel 1 goto :no_import',
        'if "%ERRORLEVEL%"=="0" python -m pip --version',
        'call %PY% -m venv "%VENV%"',
        'rem if errorlevel 1 is fine in a comment',
    ])  # fmt: skip
    assert [number for number, _ in problems(sample)] == [1, 2, 3, 4, 5]


def expansions(line, name):
    """For each place `name` is expanded in `line`: is it inside double quotes, as cmd.exe counts them?"""
    found, inside = [], False
    for index, character in enumerate(line):
        if character == '"':
            inside = not inside
        elif line.startswith(name, index):
            found.append(inside)
    return found


def test_the_pause_test_reads_the_command_line_only_inside_quotes_and_spares_powershell():
    """A folder named with "&" broke `echo %cmdcmdline% | findstr`; PowerShell's .\\setup_env.bat also
    runs `cmd /c` with the file's name but keeps its window, and is told apart by PSModulePath."""
    text = BAT.read_bytes().decode("utf-8")
    commands = [line for line in text.splitlines() if not line.lstrip().lower().startswith("rem")]
    uses = [line for line in commands if "cmdcmdline" in line.lower()]
    assert uses == ['set "CMDLINE=%cmdcmdline:"=%"']  # its quotes taken out, read inside the set's quotes
    assert 'set "CMDLINE=%CMDLINE:"=%"' in commands
    outside_quotes = [line for line in commands if any(not quoted for quoted in expansions(line, "%CMDLINE"))]
    assert outside_quotes == [], outside_quotes
    assert expansions('echo %CMDLINE% "%CMDLINE%"', "%CMDLINE") == [False, True]  # the control
    assert any("PSModulePath" in line and "USERPROFILE" in line for line in commands)
    assert 'if "%DOUBLE_CLICKED%"=="1" pause' in commands
