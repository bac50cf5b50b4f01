@echo off
rem Set up (or update) the bigcats environment on native Windows. Safe to re-run.
rem
rem   setup_env.bat          .venv, the pinned packages, the "Python (bigcats)" Jupyter kernel
rem
rem The truth about GPUs here: TensorFlow 2.10 was the last release with GPU support on native
rem Windows. TensorFlow 2.21 (what this project uses) runs on the CPU on native Windows. For an
rem NVIDIA GPU, use WSL2 and run setup_env.sh inside it (this script prints the commands).
setlocal EnableExtensions EnableDelayedExpansion
cd /d "%~dp0"
set "VENV=.venv"
if not "%BIGCATS_VENV%"=="" set "VENV=%BIGCATS_VENV%"

rem --- a Python that TensorFlow 2.21 supports (3.10-3.13) -----------------------------------
set "PY="
if exist "%VENV%\Scripts\python.exe" (
  "%VENV%\Scripts\python.exe" -c "import sys; sys.exit(0 if (3,10) <= sys.version_info[:2] <= (3,13) else 1)" >nul 2>&1
  if errorlevel 1 (
    echo %VENV% holds a Python outside 3.10-3.13. Rename it ^(ren %VENV% %VENV%.old^) and run this again.
    exit /b 1
  )
  echo ==^> Reusing the environment in %VENV%
  goto :install
)
for %%V in (3.12 3.13 3.11 3.10) do (
  if not defined PY (
    py -%%V -c "import sys" >nul 2>&1 && set "PY=py -%%V"
  )
)
if not defined PY (
  python -c "import sys; sys.exit(0 if (3,10) <= sys.version_info[:2] <= (3,13) else 1)" >nul 2>&1 && set "PY=python"
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
set "PYEXE=%VENV%\Scripts\python.exe"
echo ==^> Installing the pinned packages (requirements.txt)
"%PYEXE%" -m pip install --disable-pip-version-check -r requirements.txt || goto :fail
echo ==^> Installing the bigcats package (editable)
"%PYEXE%" -m pip install --disable-pip-version-check --no-deps -e . || goto :fail
echo ==^> Registering the Jupyter kernel "Python (bigcats)"
"%PYEXE%" -m ipykernel install --user --name bigcats --display-name "Python (bigcats)" || goto :fail

rem --- what this machine gets ------------------------------------------------------------------
for /f "tokens=4-6 delims=[]. " %%a in ('ver') do set "WINBUILD=%%c"
echo.
where nvidia-smi >nul 2>&1
if errorlevel 1 (
  echo ==^> No NVIDIA driver found: TensorFlow runs on the CPU. Every notebook still works.
  goto :done
)
echo ==^> NVIDIA GPU found. TensorFlow 2.21 cannot use it on native Windows ^(CPU only since 2.11^).
echo     The GPU route is WSL2 ^(Windows 10 build 19044+ or Windows 11; this is build %WINBUILD%^):
echo       1. Keep the NVIDIA driver installed here on Windows. Do NOT install a driver inside WSL.
echo       2. In PowerShell as administrator:   wsl --install -d Ubuntu     ^(then restart^)
echo       3. In Ubuntu:   sudo apt update ^&^& sudo apt install -y python3-venv git
echo                       git clone ^<this project^> bigcats ^&^& cd bigcats ^&^& ./setup_env.sh
echo          setup_env.sh installs tensorflow[and-cuda] when nvidia-smi works inside Ubuntu.
wsl --status >nul 2>&1
if errorlevel 1 (echo     WSL is not installed yet: start at step 2.) else (echo     WSL is installed: start at step 3.)
echo     Legacy native-GPU route ^(untested, not supported by this project^): README, "Native Windows GPU".

:done
echo.
echo Done. Next:
echo     %VENV%\Scripts\python -m bigcats doctor
echo     %VENV%\Scripts\jupyter lab notebooks
exit /b 0

:fail
echo.
echo Setup failed at the step above. Fix what it says and run setup_env.bat again (it is safe to re-run).
exit /b 1
