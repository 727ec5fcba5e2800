//! Restarts and ports: a node stopped with sessions open starts again at once on the same port,
//! and of two nodes started together on one port exactly one runs.
//!
//! Both tests need a fixed port: they take one that is free now (bind 127.0.0.1:0, read the
//! port, release it) and hand it to the node. Another process could take that port in the
//! moment between; the node would then refuse to start, naming the address, and the test would
//! fail with that message rather than pass wrongly.

mod common;

use common::{client, command, free_port, scratch, start, WAIT};
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::Child;
use std::sync::mpsc;
use std::time::Instant;

fn args<'a>(listen: &'a str, dir: &'a Path) -> [&'a str; 6] {
    let dir = dir.to_str().expect("temp paths are UTF-8");
    [
        "--listen",
        listen,
        "--admin",
        "127.0.0.1:0",
        "--data-dir",
        dir,
    ]
}

#[test]
fn a_node_stopped_with_sessions_open_restarts_at_once_on_its_port() {
    let dir = scratch("restart-port");
    let listen = format!("127.0.0.1:{}", free_port());
    let node = start(&args(&listen, &dir));
    // Sessions the node will close itself when it stops: their ends on its port linger
    // (FIN_WAIT2, then TIME_WAIT) after the process is gone.
    let mut sessions: Vec<_> = (0..6).map(|_| client(&node)).collect();
    for c in &mut sessions {
        c.ping().expect("a ping on a fresh session");
    }
    let (code, stderr) = node.sigterm_and_wait();
    assert_eq!(code, Some(0), "SIGTERM exits 0; stderr: {stderr}");

    // `start` fails naming the node's stderr if it exits instead of listening.
    let again = start(&args(&listen, &dir));
    assert_eq!(again.listen.to_string(), listen);
    let mut c = client(&again);
    c.ping().expect("the restarted node serves");
    drop(sessions);
    let (code, stderr) = again.sigterm_and_wait();
    assert_eq!(code, Some(0), "{stderr}");
    let _ = std::fs::remove_dir_all(dir);
}

/// What one of two racing nodes did.
enum Event {
    Listening(usize),
    Exited(usize, Option<i32>, String),
}

/// Starts two nodes on `listen` at the same moment; returns the stderr of the one that exited.
fn race(round: usize, listen: &str) -> Result<String, String> {
    let dirs = [
        scratch(&format!("twin-a-{round}")),
        scratch(&format!("twin-b-{round}")),
    ];
    let mut children: Vec<Child> = dirs
        .iter()
        .map(|dir| {
            command(&args(listen, dir))
                .spawn()
                .expect("spawn ronode run")
        })
        .collect();
    let (tx, rx) = mpsc::channel();
    for (i, child) in children.iter_mut().enumerate() {
        let stdout = child.stdout.take().expect("stdout");
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.starts_with("listening on ") {
                    let _ = tx.send(Event::Listening(i));
                }
            }
        });
    }
    let deadline = Instant::now() + WAIT;
    let mut listening = [false; 2];
    let mut reaped = [false; 2];
    let mut exited: Option<(usize, Option<i32>, String)> = None;
    let outcome = loop {
        if let (Some((loser, code, stderr)), true) = (&exited, listening[1 - exited_idx(&exited)]) {
            break if *code == Some(1) {
                Ok(stderr.clone())
            } else {
                Err(format!("node {loser} exited {code:?}, not 1: {stderr}"))
            };
        }
        if listening == [true, true] {
            break Err(format!("both nodes run on {listen}"));
        }
        if Instant::now() > deadline {
            break Err(format!(
                "within {WAIT:?}: listening {listening:?}, exited {:?}",
                exited.as_ref().map(|e| (e.0, e.1, e.2.clone()))
            ));
        }
        for (i, child) in children.iter_mut().enumerate() {
            if !reaped[i] {
                if let Some(status) = child.try_wait().unwrap() {
                    reaped[i] = true;
                    let mut stderr = String::new();
                    let _ = child.stderr.take().unwrap().read_to_string(&mut stderr);
                    let _ = tx.send(Event::Exited(i, status.code(), stderr));
                }
            }
        }
        match rx.recv_timeout(std::time::Duration::from_millis(20)) {
            Ok(Event::Listening(i)) => listening[i] = true,
            Ok(Event::Exited(i, code, stderr)) => {
                if exited.is_some() {
                    break Err(format!("both nodes exited; the second said: {stderr}"));
                }
                exited = Some((i, code, stderr));
            }
            Err(_) => {}
        }
    };
    for mut child in children {
        let _ = child.kill();
        let _ = child.wait();
    }
    for dir in dirs {
        let _ = std::fs::remove_dir_all(dir);
    }
    outcome
}

fn exited_idx(exited: &Option<(usize, Option<i32>, String)>) -> usize {
    exited.as_ref().map_or(0, |e| e.0)
}

#[test]
fn of_two_nodes_started_together_on_one_port_exactly_one_runs() {
    for round in 0..10 {
        let listen = format!("127.0.0.1:{}", free_port());
        let stderr = race(round, &listen).unwrap_or_else(|e| panic!("round {round}: {e}"));
        assert!(
            stderr.contains(&listen) && stderr.contains("in use"),
            "round {round}: the node that gave way names the conflict: {stderr}"
        );
    }
}
