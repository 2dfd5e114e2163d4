//! Which Rollouts this replica acts on: every one, while it leads (always, without leader
//! election), or those whose shard it holds ([`super::shards`]).
//!
//! A pass takes a [`Permit`] before it starts and checks it before each write, so that a replica
//! that lost its lease (or is handing a shard over) stops writing at the next write, not at the
//! next pass.

use super::error::Error;
use super::leader::Leadership;
use super::shards::{ShardPermit, Shards, shard_of};
use futures::StreamExt;
use futures::stream::BoxStream;
use std::collections::BTreeSet;

/// How this replica decides what it acts on.
#[derive(Clone)]
pub enum Acting {
    Leader(Leadership),
    Sharded(Shards),
}

/// Leave to act on one Rollout, for one pass.
pub enum Permit {
    Leader(Leadership),
    Shard(ShardPermit),
}

impl Permit {
    /// Fails once this replica no longer may act on the Rollout: checked before each write.
    pub fn check(&self) -> Result<(), Error> {
        let holds = match self {
            Self::Leader(leadership) => leadership.is_leader(),
            Self::Shard(permit) => permit.holds(),
        };
        if holds { Ok(()) } else { Err(Error::NotActing) }
    }
}

/// Rollouts this replica has come to act on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Acquired {
    /// Every Rollout: leadership was won.
    Everything,
    /// The Rollouts of one shard of `count`.
    Shard { shard: u32, count: u32 },
}

impl Acquired {
    /// Whether the Rollout `namespace/name` is among them.
    pub fn covers(&self, namespace: &str, name: &str) -> bool {
        match *self {
            Self::Everything => true,
            Self::Shard { shard, count } => shard_of(namespace, name, count) == shard,
        }
    }
}

impl Acting {
    /// Leave to act on the Rollout `namespace/name`, if this replica acts on it now.
    pub fn permit(&self, namespace: &str, name: &str) -> Option<Permit> {
        match self {
            Self::Leader(leadership) => leadership.is_leader().then(|| Permit::Leader(leadership.clone())),
            Self::Sharded(shards) => shards.permit(namespace, name).map(Permit::Shard),
        }
    }

    /// Each time this replica comes to act on more Rollouts, which: their passes were skipped
    /// until now and must run.
    pub fn acquired(&self) -> BoxStream<'static, Acquired> {
        match self {
            Self::Leader(leadership) => {
                let leadership = leadership.clone();
                futures::stream::once(async move {
                    leadership.acquired().await;
                    Acquired::Everything
                })
                .boxed()
            }
            Self::Sharded(shards) => {
                let count = shards.count();
                futures::stream::unfold(
                    (shards.held(), BTreeSet::new()),
                    move |(mut held, mut seen)| async move {
                        loop {
                            let now: BTreeSet<u32> = held.borrow_and_update().clone();
                            let gained: Vec<Acquired> = now
                                .difference(&seen)
                                .map(|&shard| Acquired::Shard { shard, count })
                                .collect();
                            seen = now;
                            if !gained.is_empty() {
                                return Some((futures::stream::iter(gained), (held, seen)));
                            }
                            held.changed().await.ok()?;
                        }
                    },
                )
                .flatten()
                .boxed()
            }
        }
    }

    /// Resolves when this replica lost a lease it did not give up; the process should exit.
    pub async fn lost(&self) {
        match self {
            Self::Leader(leadership) => leadership.lost().await,
            Self::Sharded(shards) => shards.lost().await,
        }
    }
}
