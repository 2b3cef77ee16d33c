//! `certeasy service -f config.yml` (Windows only): runs `serve` under the
//! Service Control Manager. A Stop or Shutdown control is the graceful
//! shutdown of SIGTERM on Unix (stop accepting, finish in-flight requests,
//! drain jobs). Register it with
//! `sc.exe create certeasy binPath= "C:\…\certeasy.exe service -f C:\…\config.yml" start= auto`
//! (docs/operations.md). Not built or tested by the Linux CI.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::OnceLock;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use windows_service::service::{
    ServiceControl, ServiceControlAccept, ServiceExitCode, ServiceState, ServiceStatus, ServiceType,
};
use windows_service::service_control_handler::{self, ServiceControlHandlerResult};
use windows_service::service_dispatcher;

/// The service name given to `sc.exe create`.
const SERVICE_NAME: &str = "certeasy";

/// The configuration file of this process's service.
static CONFIG: OnceLock<PathBuf> = OnceLock::new();

/// Hands the process to the Service Control Manager; returns when the
/// service has stopped.
pub fn run(file: PathBuf) -> ExitCode {
    let _ = CONFIG.set(file);
    match service_dispatcher::start(SERVICE_NAME, ffi_service_main) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("certeasy: not started by the Service Control Manager ({e}); use `certeasy serve` from a console");
            ExitCode::from(1)
        }
    }
}

/// Entry point the dispatcher calls on its own thread. The SCM's start
/// arguments are not used: the configuration comes from the command line
/// registered with `sc.exe create`.
extern "system" fn ffi_service_main(_argc: u32, _argv: *mut *mut u16) {
    service_main(Vec::new());
}

fn service_main(_arguments: Vec<OsString>) {
    let Some(file) = CONFIG.get().cloned() else {
        return;
    };
    let stop = CancellationToken::new();
    let on_stop = stop.clone();
    let handle = match service_control_handler::register(SERVICE_NAME, move |control| match control
    {
        ServiceControl::Stop | ServiceControl::Shutdown => {
            on_stop.cancel();
            ServiceControlHandlerResult::NoError
        }
        ServiceControl::Interrogate => ServiceControlHandlerResult::NoError,
        _ => ServiceControlHandlerResult::NotImplemented,
    }) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("certeasy: cannot register the service control handler: {e}");
            return;
        }
    };
    let status = |state, accept, code: u32| ServiceStatus {
        service_type: ServiceType::OWN_PROCESS,
        current_state: state,
        controls_accepted: accept,
        exit_code: ServiceExitCode::Win32(code),
        checkpoint: 0,
        wait_hint: Duration::from_secs(60),
        process_id: None,
    };
    let _ = handle.set_service_status(status(
        ServiceState::Running,
        ServiceControlAccept::STOP | ServiceControlAccept::SHUTDOWN,
        0,
    ));
    let code = super::serve_until(file, Some(stop));
    let failed = code != ExitCode::SUCCESS;
    let _ = handle.set_service_status(status(
        ServiceState::Stopped,
        ServiceControlAccept::empty(),
        u32::from(failed),
    ));
}
