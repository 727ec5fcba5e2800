//! `ronode put`: one PUT, tried again when the node sheds it. A node refuses a PUT it has no
//! room for right at its START frame with a retryable answer (429 `quota`, 503 `busy`, ...)
//! and `retry_after_ms`; many clients told to come back after the same pause would come back
//! together, so each pause is jittered and doubles with each try, up to [`TRIES`] tries.

use std::net::SocketAddr;
use std::time::Duration;

use rand_core::{OsRng, RngCore};
use ronode_client::{Client, ClientError, ClientOptions};
use ronode_proto::msg::objects::PutResp;

/// Tries of one PUT in all (the first and the retries).
pub const TRIES: u32 = 6;
/// The pause before the first retry when the node named none.
const FIRST_PAUSE_MS: u64 = 100;
/// The longest pause between two tries.
const MAX_PAUSE_MS: u64 = 5_000;

/// Connects to `addr` and PUTs `bytes`, in a fresh session for each try (a refused upload may
/// end its session). Each retry is announced on stderr.
pub fn put(
    addr: SocketAddr,
    opts: &ClientOptions,
    bytes: &[u8],
    cap: Option<&[u8]>,
) -> Result<PutResp, ClientError> {
    let mut attempt = 1;
    loop {
        let result = Client::connect(addr, opts).and_then(|mut c| {
            let resp = c.put(bytes, cap)?;
            // Stored whatever the goodbye does.
            let _ = c.close();
            Ok(resp)
        });
        let hint = match &result {
            Err(ClientError::Node(e)) if e.retryable && attempt < TRIES => e.retry_after_ms,
            _ => return result,
        };
        let pause = pause_ms(attempt, hint, OsRng.next_u64());
        if let Err(e) = &result {
            eprintln!(
                "put: {e}; retrying in {pause} ms (try {} of {TRIES})",
                attempt + 1
            );
        }
        std::thread::sleep(Duration::from_millis(pause));
        attempt += 1;
    }
}

/// The pause after failed try `attempt` (1-based): the node's `retry_after_ms` (or
/// [`FIRST_PAUSE_MS`]) doubled for each earlier retry, capped at [`MAX_PAUSE_MS`], then drawn
/// from its upper half with `random` ("equal jitter": never less than half, so a retry does not
/// come back at once, and spread over the other half).
fn pause_ms(attempt: u32, retry_after_ms: Option<u64>, random: u64) -> u64 {
    let base = retry_after_ms.unwrap_or(FIRST_PAUSE_MS).max(1);
    let grown = base
        .saturating_mul(1 << (attempt - 1).min(16))
        .min(MAX_PAUSE_MS);
    let half = grown / 2;
    grown - half + random % (half + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_double_stay_jittered_in_their_upper_half_and_are_capped() {
        for random in [0, 1, 77, u64::MAX] {
            for attempt in 1..TRIES {
                let p = pause_ms(attempt, Some(250), random);
                let full = (250u64 << (attempt - 1)).min(MAX_PAUSE_MS);
                assert!(
                    (full / 2..=full).contains(&p),
                    "try {attempt}: {p} of {full}"
                );
            }
            assert!(pause_ms(40, None, random) <= MAX_PAUSE_MS);
            assert!(pause_ms(1, None, random) >= FIRST_PAUSE_MS / 2);
        }
        assert_ne!(
            pause_ms(2, Some(250), 3),
            pause_ms(2, Some(250), 200),
            "two clients drawing differently come back apart"
        );
    }
}
