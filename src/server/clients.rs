//! The open client connections, by slot (a slot's index is its mio token
//! minus a base), with the two lists a loop turn works through: connections
//! with output to write, and connections to serve and read again (their
//! answer arrived, so the next pipelined request can be served; or they
//! used up their reads of the previous turn).
//!
//! The answers that come later reach their connection through [`Answering`],
//! the server's side of the application's `Host` interface. A request is
//! named by its slot and the slot's generation, which moves on when the
//! request is answered and when the connection closes, so an answer for a
//! request that has gone is recognised and dropped.

use std::ops::{Deref, DerefMut, Range};
use std::time::{Duration, Instant};

use crate::api::{Answer, Host, RequestId};
use crate::metrics::{HttpMetrics, Route};
use crate::server::budget::BufferBudget;
use crate::server::client::Client;

struct Slot {
    client: Option<Client>,
    generation: u32,
    /// Already on the list of connections to write this turn.
    queued_for_flush: bool,
}

#[derive(Default)]
pub struct Clients {
    slots: Vec<Slot>,
    free: Vec<usize>,
    to_flush: Vec<usize>,
    to_resume: Vec<usize>,
    /// Every connection's buffers beyond its free share come from here.
    budget: BufferBudget,
    /// Requests answered, by route and status, and their latency.
    http: HttpMetrics,
}

/// A connection lent out for one or more operations: it gets the buffer
/// limits of the moment first, and what its buffers then hold is settled
/// with the budget when the loan ends.
pub struct ClientMut<'a> {
    client: &'a mut Client,
    budget: &'a mut BufferBudget,
}

impl<'a> ClientMut<'a> {
    fn lend(client: &'a mut Client, budget: &'a mut BufferBudget) -> ClientMut<'a> {
        let held = client.held();
        *client.budget_terms().0 = budget.limits(held);
        ClientMut { client, budget }
    }
}

impl Deref for ClientMut<'_> {
    type Target = Client;
    fn deref(&self) -> &Client {
        self.client
    }
}

impl DerefMut for ClientMut<'_> {
    fn deref_mut(&mut self) -> &mut Client {
        self.client
    }
}

impl Drop for ClientMut<'_> {
    fn drop(&mut self) {
        let held = self.client.held();
        self.budget.settle(self.client.budget_terms().1, held);
    }
}

impl Clients {
    /// Open connections (and slots being filled).
    pub fn live(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    /// Counts a request answered.
    pub fn record(&mut self, route: Route, status: u16, took: Duration) {
        self.http.record(route, status, took);
    }

    pub fn http_metrics(&self) -> &HttpMetrics {
        &self.http
    }

    /// Bytes of the shared buffer budget in use.
    pub fn buffer_bytes_shared(&self) -> usize {
        self.budget.used()
    }

    /// Every slot index, open or not.
    pub fn indexes(&self) -> Range<usize> {
        0..self.slots.len()
    }

    pub fn get_mut(&mut self, index: usize) -> Option<ClientMut<'_>> {
        let client = self.slots.get_mut(index)?.client.as_mut()?;
        Some(ClientMut::lend(client, &mut self.budget))
    }

    /// Every open connection is idle: nothing waits, nothing is unsent.
    pub fn all_idle(&self) -> bool {
        self.slots
            .iter()
            .filter_map(|slot| slot.client.as_ref())
            .all(Client::is_idle)
    }

    /// A slot for a new connection; `put` fills it, `remove` gives it back.
    pub fn allocate(&mut self) -> usize {
        match self.free.pop() {
            Some(index) => index,
            None => {
                self.slots.push(Slot {
                    client: None,
                    generation: 0,
                    queued_for_flush: false,
                });
                self.slots.len() - 1
            }
        }
    }

    pub fn put(&mut self, index: usize, client: Client) {
        self.slots[index].client = Some(client);
    }

    /// Frees the slot; the connection, if any, is returned to be closed.
    pub fn remove(&mut self, index: usize) -> Option<Client> {
        let slot = &mut self.slots[index];
        let mut client = slot.client.take();
        if let Some(client) = client.as_mut() {
            self.budget.settle(client.budget_terms().1, 0);
        }
        slot.generation = slot.generation.wrapping_add(1);
        slot.queued_for_flush = false;
        self.free.push(index);
        client
    }

    /// The id the connection's next (or current) request goes by.
    pub fn request_id(&self, index: usize) -> RequestId {
        let generation = self.slots.get(index).map_or(0, |slot| slot.generation);
        RequestId((index as u64) << 32 | u64::from(generation))
    }

    /// The slot of the connection a request id names, if that request is
    /// still the one it waits for.
    fn waiting_slot(&self, request: RequestId) -> Option<usize> {
        let index = (request.0 >> 32) as usize;
        let slot = self.slots.get(index)?;
        let current = slot.generation == request.0 as u32;
        let waiting = slot.client.as_ref().is_some_and(Client::is_waiting);
        (current && waiting).then_some(index)
    }

    pub fn queue_flush(&mut self, index: usize) {
        if let Some(slot) = self.slots.get_mut(index) {
            if slot.client.is_some() && !slot.queued_for_flush {
                slot.queued_for_flush = true;
                self.to_flush.push(index);
            }
        }
    }

    /// Whether a turn has work queued (the loop must not sleep).
    pub fn has_work(&self) -> bool {
        !self.to_flush.is_empty() || !self.to_resume.is_empty()
    }

    pub fn has_output_queued(&self) -> bool {
        !self.to_flush.is_empty()
    }

    /// Swaps the list of connections to write into `into` (which must be
    /// empty), so writing may queue more for the next pass.
    pub fn take_to_flush(&mut self, into: &mut Vec<usize>) {
        debug_assert!(into.is_empty());
        std::mem::swap(&mut self.to_flush, into);
        for &index in into.iter() {
            self.slots[index].queued_for_flush = false;
        }
    }

    /// The connection is served and read again next turn.
    pub fn queue_resume(&mut self, index: usize) {
        self.to_resume.push(index);
    }

    /// Swaps the list of connections whose answer arrived into `into`.
    pub fn take_to_resume(&mut self, into: &mut Vec<usize>) {
        debug_assert!(into.is_empty());
        std::mem::swap(&mut self.to_resume, into);
    }

    /// The application's way to answer, at `now`.
    pub fn answering(&mut self, now: Instant) -> Answering<'_> {
        Answering { clients: self, now }
    }
}

/// Answers from the application, written into their connections.
pub struct Answering<'a> {
    clients: &'a mut Clients,
    now: Instant,
}

impl Host for Answering<'_> {
    fn answer(&mut self, request: RequestId, answer: Answer<'_>) {
        let Some(index) = self.clients.waiting_slot(request) else {
            return;
        };
        let slot = &mut self.clients.slots[index];
        let Some(client) = slot.client.as_mut() else {
            return;
        };
        let served = ClientMut::lend(client, &mut self.clients.budget).answer(answer, self.now);
        if let Some((route, status, took)) = served {
            self.clients.http.record(route, status, took);
        }
        slot.generation = slot.generation.wrapping_add(1);
        self.clients.to_resume.push(index);
        self.clients.queue_flush(index);
    }

    fn is_waiting(&self, request: RequestId) -> bool {
        self.clients.waiting_slot(request).is_some()
    }
}
