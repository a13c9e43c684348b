//! Cheaper mode (`min_processes` below `max_processes`): more instances while requests
//! wait in the app's queue, fewer once they idle. The decision alone, on what the
//! supervisor sees; one step per look, and no start while another started one is not
//! ready yet (uWSGI's cheaper step of one, but driven by the queue, not by guesses).

use std::time::Duration;

/// Requests waiting this long in a row start another instance.
pub const UP_AFTER: Duration = Duration::from_millis(100);

/// One instance slot as the supervisor sees it.
#[derive(Clone, Copy, Debug)]
pub struct Seen {
    /// Meant to be running (started, starting or to be started again).
    pub wanted: bool,
    /// Taking requests.
    pub ready: bool,
    /// How long since it last had a request in flight.
    pub idle: Duration,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    Start(usize),
    Stop(usize),
    Hold,
}

/// `waited`: how long requests have been waiting without a break (None: none wait now).
pub fn decide(
    seen: &[Seen],
    min: usize,
    max: usize,
    waited: Option<Duration>,
    idle_timeout: Duration,
) -> Step {
    let running = seen.iter().filter(|s| s.wanted).count();
    let starting = seen.iter().any(|s| s.wanted && !s.ready);
    match waited {
        Some(w) if w >= UP_AFTER && running < max && !starting => seen
            .iter()
            .position(|s| !s.wanted)
            .map_or(Step::Hold, Step::Start),
        Some(_) => Step::Hold,
        // Dispatch takes the lowest-numbered free instance, so the highest goes idle
        // first: only it stops, so the fleet shrinks from the top and stays packed.
        None if running > min => match seen.iter().rposition(|s| s.wanted) {
            Some(i) if seen[i].ready && seen[i].idle >= idle_timeout => Step::Stop(i),
            _ => Step::Hold,
        },
        None => Step::Hold,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);
    const IDLE: Duration = Duration::from_secs(5);

    fn up(idle: Duration) -> Seen {
        Seen {
            wanted: true,
            ready: true,
            idle,
        }
    }
    const OFF: Seen = Seen {
        wanted: false,
        ready: false,
        idle: Duration::ZERO,
    };

    #[test]
    fn requests_waiting_long_enough_start_the_first_free_slot() {
        let s = [up(MS), up(MS), OFF, OFF];
        assert_eq!(decide(&s, 2, 4, Some(50 * MS), IDLE), Step::Hold);
        assert_eq!(decide(&s, 2, 4, Some(UP_AFTER), IDLE), Step::Start(2));
    }

    #[test]
    fn one_start_at_a_time_and_never_past_max() {
        let starting = Seen {
            ready: false,
            ..up(MS)
        };
        let s = [up(MS), starting, OFF];
        assert_eq!(decide(&s, 1, 3, Some(IDLE), IDLE), Step::Hold);
        let full = [up(MS), up(MS)];
        assert_eq!(decide(&full, 1, 2, Some(IDLE), IDLE), Step::Hold);
    }

    #[test]
    fn the_highest_instance_stops_once_idle_down_to_min() {
        let s = [up(IDLE), up(IDLE), up(MS), up(IDLE), OFF];
        assert_eq!(decide(&s, 2, 5, None, IDLE), Step::Stop(3));
        let s = [up(IDLE), up(IDLE), up(MS), OFF, OFF];
        assert_eq!(
            decide(&s, 2, 5, None, IDLE),
            Step::Hold,
            "the highest is busy"
        );
        let s = [up(IDLE), up(IDLE), OFF];
        assert_eq!(decide(&s, 2, 3, None, IDLE), Step::Hold, "at min");
        let s = [up(IDLE), up(IDLE), up(IDLE)];
        assert_eq!(
            decide(&s, 1, 3, Some(MS), IDLE),
            Step::Hold,
            "nothing stops while requests wait"
        );
    }
}
