@echo off
rem Set up (or update) the bigcats environment on native Windows. Safe to re-run.
rem
rem   setup_env.bat          .venv, the pinned packages, the "Python (bigcats)" Jupyter kernel
rem
rem The truth about GPUs here: TensorFlow 2.10 was the last release with GPU support on native
rem Windows. TensorFlow 2.21 (what this project uses) runs on the CPU on native Windows. For an
rem NVIDIA GPU, use WSL2 and run setup_env.sh inside it; this script prints the exact commands.
setlocal EnableExtensions EnableDelayedExpansion
cd /d "%~dp0"
set "VENV=.venv"
if not "%BIGCATS_VENV%"=="" set "VENV=%BIGCATS_VENV%"
set "PYEXE=%VENV%\Scripts\python.exe"
set "CHECK=import sys; sys.exit(0 if (3, 10) <= sys.version_info[:2] <= (3, 13) else 1)"

rem --- a Python that TensorFlow 2.21 supports (3.10-3.13) -----------------------------------
if exist "%PYEXE%" (
  "%PYEXE%" -c "%CHECK%" >nul 2>&1
  if errorlevel 1 (
    echo %VENV% holds a Python outside 3.10-3.13. Rename it ^(ren %VENV% %VENV%.old^) and run this again.
    exit /b 1
  )
  echo ==^> Reusing the environment in %VENV%
  goto :install
)
set "PY="
for %%V in (3.12 3.13 3.11 3.10) do (
  if not defined PY (
    py -%%V -c "import sys" >nul 2>&1 && set "PY=py -%%V"
  )
)
if not defined PY (
  python -c "%CHECK%" >nul 2>&1 && set "PY=python"
)
if not defined PY (
  echo No Python 3.10-3.13 found. TensorFlow 2.21 needs one of those.
  echo Install Python 3.12 from https://www.python.org/downloads/windows/ ^(tick "Add python.exe to PATH"^)
  echo or run:  winget install Python.Python.3.12
  echo then run setup_env.bat again.
  exit /b 1
)
echo ==^> Creating the environment in %VENV% with %PY%
%PY% -m venv "%VENV%" || goto :fail

:install
echo ==^> Installing the pinned packages (requirements.txt)
"%PYEXE%" -m pip install --disable-pip-version-check -r requirements.txt || goto :fail

rem bigcats\setup_plan.py decides what this machine gets (the same logic as setup_env.sh, tested
rem for Windows, WSL2, Linux and macOS): extra packages on stdout, advice on stderr.
echo ==^> Checking this machine for a GPU route
set "EXTRA="
for /f "usebackq delims=" %%p in (`"%PYEXE%" -m bigcats.setup_plan`) do set "EXTRA=%%p"
if defined EXTRA (
  echo ==^> Installing !EXTRA!
  "%PYEXE%" -m pip install --disable-pip-version-check !EXTRA! || goto :fail
)

echo ==^> Installing the bigcats package (editable)
"%PYEXE%" -m pip install --disable-pip-version-check --no-deps -e . || goto :fail
echo ==^> Registering the Jupyter kernel "Python (bigcats)"
"%PYEXE%" -m ipykernel install --user --name bigcats --display-name "Python (bigcats)" || goto :fail

echo.
echo Done. Next:
echo     %VENV%\Scripts\python -m bigcats doctor
echo     %VENV%\Scripts\jupyter lab notebooks
exit /b 0

:fail
echo.
echo Setup failed at the step above. Fix what it says and run setup_env.bat again (it is safe to re-run).
exit /b 1
