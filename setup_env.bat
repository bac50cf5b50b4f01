@echo off
rem Set up (or update) the bigcats environment on native Windows. Safe to re-run.
rem
rem   setup_env.bat          .venv, the pinned packages, the "Python (bigcats)" Jupyter kernel
rem                          (in PowerShell: .\setup_env.bat)
rem   setup_env.bat --cpu    never a GPU build
rem   setup_env.bat --backend torch^|jax^|tensorflow
rem                          Keras' backend, instead of the one chosen for this machine
rem
rem The truth about GPUs here: TensorFlow 2.10 was the last release with GPU support on native
rem Windows; TensorFlow 2.21 (what this project uses) runs on the CPU here. Keras trains on PyTorch
rem instead where one of its builds takes the GPU: NVIDIA Turing or newer with driver 580+ (CUDA 13),
rem Maxwell to Volta (GTX 9xx/10xx, Titan V) with driver 527.41+ (CUDA 12.6), Intel Arc (XPU);
rem bigcats\environment\setup_plan.py decides, and TensorFlow stays, for tf.data. WSL2 is
rem TensorFlow's GPU route; this script prints the exact commands where it is the only one.
rem
rem Written for cmd.exe: no delayed expansion (a "!" in a folder name would break it), no && or ||
rem chains, and no variable set and read in one ( ) block. Every step checks for exactly 0
rem ("if errorlevel 1" is "1 or more", and a Python that crashes exits with a negative code such
rem as -1073741819), and every interpreter runs through "call" (a python.bat shim, as pyenv-win
rem installs, would otherwise never return to this script). tests/test_setup_env_bat.py checks both.
setlocal EnableExtensions DisableDelayedExpansion

rem Started by a double-click? Then keep the window open at the end, so its messages can be read.
rem Explorer starts "cmd.exe /c" with this file's name; so does PowerShell (.\setup_env.bat), whose
rem window stays open, and which puts the user's own module folder first in PSModulePath. The
rem command line is read with its quotes taken out and only inside quotes, so that a folder
rem named with "&" cannot break these lines.
set "DOUBLE_CLICKED=0"
set "CMDLINE=%cmdcmdline:"=%"
rem (twice: where cmdcmdline is not defined, as under Wine, the first leaves a quote behind)
set "CMDLINE=%CMDLINE:"=%"
call set "WITHOUT_NAME=%%CMDLINE:%~nx0=%%"
if /i not "%WITHOUT_NAME%"=="%CMDLINE%" if /i not "%CMDLINE: /c =%"=="%CMDLINE%" set "DOUBLE_CLICKED=1"
if defined PSModulePath call set "WITHOUT_PROFILE=%%PSModulePath:%USERPROFILE%=%%"
if defined PSModulePath if /i not "%WITHOUT_PROFILE%"=="%PSModulePath%" set "DOUBLE_CLICKED=0"
if "%BIGCATS_NO_PAUSE%"=="1" set "DOUBLE_CLICKED=0"

set "HERE=%~dp0"
if "%HERE:~0,2%"=="\\" goto :unc
cd /d "%HERE%"
if not "%ERRORLEVEL%"=="0" goto :no_folder

set "VENV=.venv"
if not "%BIGCATS_VENV%"=="" set "VENV=%BIGCATS_VENV%"
set "PYEXE=%VENV%\Scripts\python.exe"
set "PLAN=%TEMP%\bigcats-setup-plan-%RANDOM%.txt"

rem --- options: passed on to bigcats\setup_plan.py ---------------------------------------------
set "PLAN_FLAGS="
:options
if "%~1"=="" goto :options_done
if /i "%~1"=="--cpu" goto :option_cpu
if /i "%~1"=="--backend" goto :option_backend
echo unknown option: %~1   (setup_env.bat [--cpu] [--backend tensorflow^|torch^|jax])
goto :failed
:option_cpu
set "PLAN_FLAGS=%PLAN_FLAGS% --cpu"
shift
goto :options
:option_backend
if /i not "%~2"=="tensorflow" if /i not "%~2"=="torch" if /i not "%~2"=="jax" goto :bad_backend
set "PLAN_FLAGS=%PLAN_FLAGS% --backend %~2"
shift
shift
goto :options
:bad_backend
echo --backend takes tensorflow, torch or jax, not "%~2"
goto :failed
:options_done

rem --- an environment that is already here --------------------------------------------------
if exist "%VENV%\bin\python" if not exist "%PYEXE%" goto :linux_venv
if not exist "%PYEXE%" goto :find_python
call "%PYEXE%" -m bigcats.environment.setup_plan --check-python
if not "%ERRORLEVEL%"=="0" goto :broken_venv
echo ==^> Reusing the environment in %VENV%
call "%PYEXE%" -m pip --version >nul 2>&1
if "%ERRORLEVEL%"=="0" goto :plan
echo ==^> pip is missing from %VENV% (an interrupted first run?): restoring it
call "%PYEXE%" -m ensurepip --upgrade
if not "%ERRORLEVEL%"=="0" goto :broken_venv
goto :plan

rem --- a Python the pinned packages install on (3.11-3.13, 64-bit) ------------------------------
:find_python
set "PY="
call py -3.12 -m bigcats.environment.setup_plan --check-python >nul 2>&1
if "%ERRORLEVEL%"=="0" set "PY=py -3.12"
if defined PY goto :found_python
call py -3.13 -m bigcats.environment.setup_plan --check-python >nul 2>&1
if "%ERRORLEVEL%"=="0" set "PY=py -3.13"
if defined PY goto :found_python
call py -3.11 -m bigcats.environment.setup_plan --check-python >nul 2>&1
if "%ERRORLEVEL%"=="0" set "PY=py -3.11"
if defined PY goto :found_python
call python -m bigcats.environment.setup_plan --check-python >nul 2>&1
if "%ERRORLEVEL%"=="0" set "PY=python"
if defined PY goto :found_python
echo No 64-bit Python 3.11-3.13 found: this project's pinned packages (TensorFlow 2.21, Keras 3.15) need one.
rem any Python there is can say what is wrong with it
where py >nul 2>&1
if "%ERRORLEVEL%"=="0" call py -m bigcats.environment.setup_plan --check-python
where python >nul 2>&1
if "%ERRORLEVEL%"=="0" call python -m bigcats.environment.setup_plan --check-python
echo Install Python 3.12:  winget install Python.Python.3.12   (or: py install 3.12, or python.org)
echo then open a NEW terminal window (this one does not see the new Python yet) and run setup_env.bat again.
goto :failed

:found_python
echo ==^> Checking this machine before the download (Python, long paths, Visual C++ runtime, AVX)
call %PY% -m bigcats.environment.setup_plan --preflight
if not "%ERRORLEVEL%"=="0" goto :failed
echo ==^> Creating the environment in %VENV% with %PY%
call %PY% -m venv "%VENV%"
if not "%ERRORLEVEL%"=="0" goto :step_failed

rem --- what this machine gets, decided before the ~700 MB install ---------------------------
rem bigcats\setup_plan.py decides (the same logic as setup_env.sh, tested for Windows, WSL2,
rem Linux and macOS): extra packages on stdout, advice on stderr.
:plan
echo ==^> Checking this machine for a GPU route
call "%PYEXE%" -m bigcats.environment.setup_plan %PLAN_FLAGS% > "%PLAN%"
if not "%ERRORLEVEL%"=="0" goto :step_failed
set "EXTRA="
set /p EXTRA=<"%PLAN%"
del "%PLAN%" >nul 2>&1

echo ==^> Installing the pinned packages (requirements.txt)
call "%PYEXE%" -m pip install --disable-pip-version-check -r requirements.txt
if not "%ERRORLEVEL%"=="0" goto :step_failed
if not defined EXTRA goto :package
echo ==^> Installing %EXTRA%
call "%PYEXE%" -m pip install --disable-pip-version-check %EXTRA%
if not "%ERRORLEVEL%"=="0" goto :step_failed
rem pip takes an installed 2.14.1+cpu for torch==2.14.1: check the build is the plan's (setup_plan.py)
call "%PYEXE%" -m bigcats.environment.setup_plan %PLAN_FLAGS% --check-build
if not "%ERRORLEVEL%"=="0" goto :step_failed

:package
echo ==^> Installing the bigcats package (editable)
call "%PYEXE%" -m pip install --disable-pip-version-check --no-deps -e .
if not "%ERRORLEVEL%"=="0" goto :step_failed
echo ==^> Registering the Jupyter kernel "Python (bigcats)"
rem --sys-prefix: the kernel belongs to this environment; another copy's setup cannot re-point it
call "%PYEXE%" -m ipykernel install --sys-prefix --name bigcats --display-name "Python (bigcats)"
if not "%ERRORLEVEL%"=="0" goto :step_failed
call "%PYEXE%" -m bigcats.environment.setup_plan --lab-settings
if not "%ERRORLEVEL%"=="0" goto :step_failed
rem the backend where the command line and the kernel read it (KERAS_BACKEND set by hand still wins)
call "%PYEXE%" -m bigcats.environment.setup_plan %PLAN_FLAGS% --save-backend
if not "%ERRORLEVEL%"=="0" goto :step_failed
git rev-parse --git-dir >nul 2>&1
if not "%ERRORLEVEL%"=="0" goto :import_check
echo ==^> Keeping notebook outputs out of git (nbstripout as this clone's git filter)
"%VENV%\Scripts\nbstripout" --install
git config filter.nbstripout.extrakeys "metadata.language_info.version"
:import_check
echo ==^> Importing TensorFlow once (the step that fails if a DLL, the C++ runtime or AVX is missing)
call "%PYEXE%" -c "import tensorflow as tf; print('TensorFlow', tf.__version__, 'imports')"
if not "%ERRORLEVEL%"=="0" goto :no_import

echo.
echo Done. Next:
echo     %VENV%\Scripts\python -m bigcats doctor
echo     %VENV%\Scripts\jupyter lab notebooks
set "CODE=0"
goto :finish

:unc
echo This script is on a network or WSL path (%HERE%): cmd.exe cannot work there.
echo For a clone inside WSL, open Ubuntu and run ./setup_env.sh there. For Windows, clone onto a local drive (C:\...).
goto :failed

:no_folder
echo Could not enter the project folder %HERE%.
goto :failed

:linux_venv
echo %VENV% was made by setup_env.sh (Linux or WSL); a Windows environment cannot share the folder.
echo Set BIGCATS_VENV=.venv-windows and run setup_env.bat again, or rename %VENV%.
goto :failed

:broken_venv
echo %VENV% holds a Python that no longer runs or cannot install the pins (its Python was removed or
echo changed, or an earlier run was interrupted). Rename it (ren %VENV% %VENV%.old) and run setup_env.bat again.
goto :failed

:no_import
echo.
echo TensorFlow is installed but does not import (the error is above). The usual causes on Windows:
echo   - the Microsoft Visual C++ runtime is missing or older than 14.40: winget install Microsoft.VCRedist.2015+.x64
echo   - a CPU without AVX instructions: TensorFlow's wheels cannot run on it
echo   - non-ASCII characters in the project path: move it to a plain path such as C:\src\bigcats
goto :failed

:step_failed
echo.
echo Setup failed at the step above. Fix what it says and run setup_env.bat again (it is safe to re-run).
:failed
set "CODE=1"

:finish
if exist "%PLAN%" del "%PLAN%" >nul 2>&1
if "%DOUBLE_CLICKED%"=="1" pause
exit /b %CODE%
