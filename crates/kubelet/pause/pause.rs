// rkube's pod sandbox ("pause") program. It is the first process of every pod's sandbox: it
// holds the pod's namespaces, reaps the zombies of processes that exec into the pod, and exits
// 0 on SIGINT or SIGTERM, as upstream's pause does.
//
// build.rs compiles this file on its own with rustc into a static executable (glibc's static
// libc, so the image needs no other file), and the kubelet embeds the bytes and builds the
// sandbox image from them at start. It calls libc directly: it needs three signal handlers and
// nothing else, and a dependency-free file can be built without cargo.

use std::os::raw::c_int;

extern "C" {
    fn signal(sig: c_int, handler: extern "C" fn(c_int)) -> usize;
    fn pause() -> c_int;
    fn waitpid(pid: c_int, status: *mut c_int, options: c_int) -> c_int;
    fn getpid() -> c_int;
    fn _exit(code: c_int) -> !;
}

const SIGINT: c_int = 2;
const SIGTERM: c_int = 15;
const SIGCHLD: c_int = 17;
const WNOHANG: c_int = 1;

extern "C" fn on_term(_: c_int) {
    // SAFETY: _exit is async-signal-safe.
    unsafe { _exit(0) }
}

extern "C" fn on_child(_: c_int) {
    // SAFETY: waitpid with WNOHANG is async-signal-safe; a null status is allowed.
    unsafe { while waitpid(-1, std::ptr::null_mut(), WNOHANG) > 0 {} }
}

fn main() {
    if std::env::args().nth(1).as_deref() == Some("-v") {
        println!("rkube-pause {}", env!("RKUBE_VERSION"));
        return;
    }
    // SAFETY: plain libc calls with valid handlers.
    unsafe {
        if getpid() != 1 {
            eprintln!("pause: warning: not running as the first process of a pid namespace");
        }
        signal(SIGINT, on_term);
        signal(SIGTERM, on_term);
        signal(SIGCHLD, on_child);
        loop {
            pause();
        }
    }
}
