//! The ledger of intents, charges and refunds, and the PaymentIntent state machine. Pure: no I/O,
//! no clock (callers pass `now`), so every rule is unit-tested here. Kept in memory only: a restart
//! forgets everything, as a test double may.
use std::collections::HashMap;

use crate::stripe::{
    new_id, ApiError, CaptureMethod, Charge, ErrorObject, ErrorType, Event, IntentStatus, Metadata,
    PaymentIntent, Refund,
};

/// How a test payment method behaves, under the names Stripe gives them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestCard {
    Succeeds,
    Declined {
        code: &'static str,
        decline_code: &'static str,
        message: &'static str,
    },
}

impl TestCard {
    pub fn lookup(payment_method: &str) -> Option<Self> {
        let declined = |code, decline_code, message| {
            Some(Self::Declined {
                code,
                decline_code,
                message,
            })
        };
        match payment_method {
            "pm_card_visa" | "pm_card_mastercard" | "pm_card_amex" => Some(Self::Succeeds),
            "pm_card_chargeDeclined" => declined(
                "card_declined",
                "generic_decline",
                "Your card was declined.",
            ),
            "pm_card_chargeDeclinedInsufficientFunds" => declined(
                "card_declined",
                "insufficient_funds",
                "Your card has insufficient funds.",
            ),
            "pm_card_chargeDeclinedExpiredCard" => {
                declined("expired_card", "expired_card", "Your card has expired.")
            }
            "pm_card_chargeDeclinedProcessingError" => declined(
                "processing_error",
                "processing_error",
                "An error occurred while processing your card. Try again in a little bit.",
            ),
            _ => None,
        }
    }
}

/// `POST /v1/payment_intents`, validated.
#[derive(Debug, Clone)]
pub struct NewIntent {
    pub amount: i64,
    pub currency: String,
    /// A known test payment method (checked while parsing).
    pub payment_method: Option<String>,
    pub capture_method: CaptureMethod,
    pub confirm: bool,
    pub description: Option<String>,
    pub metadata: Metadata,
}

/// `POST /v1/refunds`, validated.
#[derive(Debug, Clone)]
pub struct NewRefund {
    pub payment_intent: String,
    pub amount: Option<i64>,
    pub reason: Option<String>,
    pub metadata: Metadata,
}

/// A parsed search query: clauses that must all hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchQuery(Vec<Clause>);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Clause {
    Metadata(String, String),
    Status(String),
}

#[derive(Default)]
pub struct Ledger {
    intents: HashMap<String, PaymentIntent>,
    /// Intent ids, oldest first: search answers newest first, as Stripe does.
    order: Vec<String>,
    charges: HashMap<String, Charge>,
    refunds: HashMap<String, Refund>,
    /// Events raised by the operations so far; the caller takes them after each operation.
    events: Vec<Event>,
}

impl Ledger {
    pub fn new() -> Self {
        Self::default()
    }

    /// The events raised since the last call, oldest first.
    pub fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    pub fn intent(&self, id: &str) -> Result<PaymentIntent, ApiError> {
        self.intents
            .get(id)
            .cloned()
            .ok_or_else(|| ApiError::not_found("intent", "payment_intent", id))
    }

    pub fn refund(&self, id: &str) -> Result<Refund, ApiError> {
        self.refunds
            .get(id)
            .cloned()
            .ok_or_else(|| ApiError::not_found("id", "refund", id))
    }

    /// Creates an intent and, with `confirm`, charges it. A declined charge is a 402 whose body
    /// carries the intent, which exists from then on.
    pub fn create(&mut self, new: NewIntent, now: i64) -> Result<PaymentIntent, ApiError> {
        if new.confirm && new.payment_method.is_none() {
            return Err(ApiError::invalid(
                "payment_method",
                "You cannot confirm this PaymentIntent because it's missing a payment method. \
                 Specify a payment method with the `payment_method` parameter.",
            )
            .not_saved());
        }
        let status = if new.payment_method.is_some() {
            IntentStatus::RequiresConfirmation
        } else {
            IntentStatus::RequiresPaymentMethod
        };
        let intent = PaymentIntent {
            id: new_id("pi"),
            object: "payment_intent",
            amount: new.amount,
            amount_capturable: 0,
            amount_received: 0,
            canceled_at: None,
            cancellation_reason: None,
            capture_method: new.capture_method,
            confirmation_method: "automatic",
            created: now,
            currency: new.currency,
            description: new.description,
            last_payment_error: None,
            latest_charge: None,
            livemode: false,
            metadata: new.metadata,
            payment_method: new.payment_method,
            payment_method_types: vec!["card"],
            status,
        };
        let id = intent.id.clone();
        self.order.push(id.clone());
        self.intents.insert(id.clone(), intent);
        if new.confirm {
            self.confirm(&id, None, now)
        } else {
            self.intent(&id)
        }
    }

    /// Charges the intent's payment method (or `payment_method`, which replaces it).
    pub fn confirm(
        &mut self,
        id: &str,
        payment_method: Option<String>,
        now: i64,
    ) -> Result<PaymentIntent, ApiError> {
        let intent = self
            .intents
            .get_mut(id)
            .ok_or_else(|| ApiError::not_found("intent", "payment_intent", id))?;
        if !matches!(
            intent.status,
            IntentStatus::RequiresConfirmation | IntentStatus::RequiresPaymentMethod
        ) {
            return Err(ApiError::unexpected_state(
                intent,
                format!(
                    "You cannot confirm this PaymentIntent because it has a status of {}.",
                    intent.status.as_str()
                ),
            ));
        }
        if payment_method.is_some() {
            intent.payment_method = payment_method;
        }
        let Some(pm) = intent.payment_method.clone() else {
            return Err(ApiError::invalid(
                "payment_method",
                "You cannot confirm this PaymentIntent because it's missing a payment method. \
                 Specify a payment method with the `payment_method` parameter.",
            ));
        };
        let card = TestCard::lookup(&pm)
            .ok_or_else(|| ApiError::missing_param("payment_method", "PaymentMethod", &pm))?;
        let mut charge = Charge {
            id: new_id("ch"),
            object: "charge",
            amount: intent.amount,
            amount_captured: 0,
            amount_refunded: 0,
            captured: false,
            created: now,
            currency: intent.currency.clone(),
            failure_code: None,
            failure_message: None,
            livemode: false,
            metadata: intent.metadata.clone(),
            paid: true,
            payment_intent: intent.id.clone(),
            payment_method: Some(pm.clone()),
            refunded: false,
            status: "succeeded",
        };
        intent.latest_charge = Some(charge.id.clone());
        let result = match card {
            TestCard::Succeeds => {
                intent.last_payment_error = None;
                let kind = match intent.capture_method {
                    CaptureMethod::Manual => {
                        intent.status = IntentStatus::RequiresCapture;
                        intent.amount_capturable = intent.amount;
                        "payment_intent.amount_capturable_updated"
                    }
                    CaptureMethod::Automatic => {
                        intent.status = IntentStatus::Succeeded;
                        intent.amount_received = intent.amount;
                        charge.captured = true;
                        charge.amount_captured = intent.amount;
                        "payment_intent.succeeded"
                    }
                };
                self.events.push(Event::new(kind, intent, now));
                Ok(intent.clone())
            }
            TestCard::Declined {
                code,
                decline_code,
                message,
            } => {
                charge.status = "failed";
                charge.paid = false;
                charge.failure_code = Some(code.to_owned());
                charge.failure_message = Some(message.to_owned());
                let error = ErrorObject {
                    kind: ErrorType::CardError,
                    code: Some(code.to_owned()),
                    decline_code: Some(decline_code.to_owned()),
                    message: message.to_owned(),
                    param: None,
                    charge: Some(charge.id.clone()),
                    payment_method: Some(pm),
                    payment_intent: None,
                };
                // As Stripe does, the failed method is detached so another can be tried.
                intent.status = IntentStatus::RequiresPaymentMethod;
                intent.payment_method = None;
                intent.last_payment_error = Some(error.clone());
                self.events
                    .push(Event::new("payment_intent.payment_failed", intent, now));
                Err(ApiError::card_error(&error, intent))
            }
        };
        self.charges.insert(charge.id.clone(), charge);
        result
    }

    /// Captures all or part of what was authorized; the rest is released.
    pub fn capture(
        &mut self,
        id: &str,
        amount_to_capture: Option<i64>,
        now: i64,
    ) -> Result<PaymentIntent, ApiError> {
        let intent = self
            .intents
            .get_mut(id)
            .ok_or_else(|| ApiError::not_found("intent", "payment_intent", id))?;
        if intent.status != IntentStatus::RequiresCapture {
            return Err(ApiError::unexpected_state(
                intent,
                format!(
                    "This PaymentIntent could not be captured because it has a status of {}. \
                     Only a PaymentIntent with one of the following statuses may be captured: \
                     requires_capture.",
                    intent.status.as_str()
                ),
            ));
        }
        let amount = amount_to_capture.unwrap_or(intent.amount_capturable);
        if amount > intent.amount_capturable {
            return Err(ApiError::invalid_code(
                "amount_to_capture",
                "amount_too_large",
                format!(
                    "The amount to capture ({amount}) must be less than or equal to the amount \
                     capturable ({}).",
                    intent.amount_capturable
                ),
            ));
        }
        intent.status = IntentStatus::Succeeded;
        intent.amount_received = amount;
        intent.amount_capturable = 0;
        if let Some(charge) = intent
            .latest_charge
            .as_ref()
            .and_then(|c| self.charges.get_mut(c))
        {
            charge.captured = true;
            charge.amount_captured = amount;
        }
        self.events
            .push(Event::new("payment_intent.succeeded", intent, now));
        Ok(intent.clone())
    }

    /// Cancels an intent that has not been paid; an authorization is released.
    pub fn cancel(
        &mut self,
        id: &str,
        reason: Option<String>,
        now: i64,
    ) -> Result<PaymentIntent, ApiError> {
        let intent = self
            .intents
            .get_mut(id)
            .ok_or_else(|| ApiError::not_found("intent", "payment_intent", id))?;
        if !matches!(
            intent.status,
            IntentStatus::RequiresCapture
                | IntentStatus::RequiresConfirmation
                | IntentStatus::RequiresPaymentMethod
        ) {
            return Err(ApiError::unexpected_state(
                intent,
                format!(
                    "You cannot cancel this PaymentIntent because it has a status of {}. Only a \
                     PaymentIntent with one of the following statuses may be canceled: \
                     requires_payment_method, requires_capture, requires_confirmation, \
                     requires_action, processing.",
                    intent.status.as_str()
                ),
            ));
        }
        intent.status = IntentStatus::Canceled;
        intent.amount_capturable = 0;
        intent.canceled_at = Some(now);
        intent.cancellation_reason = reason;
        self.events
            .push(Event::new("payment_intent.canceled", intent, now));
        Ok(intent.clone())
    }

    /// Refunds all or part of what remains of a paid intent's charge.
    pub fn create_refund(&mut self, new: NewRefund, now: i64) -> Result<Refund, ApiError> {
        let intent = self.intents.get(&new.payment_intent).ok_or_else(|| {
            ApiError::missing_param("payment_intent", "payment_intent", &new.payment_intent)
        })?;
        let charge = match intent.status {
            IntentStatus::Succeeded => intent
                .latest_charge
                .as_ref()
                .and_then(|c| self.charges.get_mut(c)),
            _ => None,
        };
        let Some(charge) = charge else {
            return Err(ApiError::unexpected_state(
                intent,
                format!(
                    "This PaymentIntent ({}) does not have a successful charge to refund.",
                    intent.id
                ),
            ));
        };
        let remaining = charge.amount_captured - charge.amount_refunded;
        if remaining <= 0 {
            return Err(ApiError::invalid_code(
                "payment_intent",
                "charge_already_refunded",
                format!("Charge {} has already been refunded.", charge.id),
            ));
        }
        let amount = new.amount.unwrap_or(remaining);
        if amount > remaining {
            return Err(ApiError::invalid_code(
                "amount",
                "amount_too_large",
                format!(
                    "Refund amount ({amount}) is greater than unrefunded amount on charge \
                     ({remaining})."
                ),
            ));
        }
        charge.amount_refunded += amount;
        charge.refunded = charge.amount_refunded == charge.amount_captured;
        let refund = Refund {
            id: new_id("re"),
            object: "refund",
            amount,
            charge: charge.id.clone(),
            created: now,
            currency: charge.currency.clone(),
            metadata: new.metadata,
            payment_intent: intent.id.clone(),
            reason: new.reason,
            status: "succeeded",
        };
        self.events
            .push(Event::new("charge.refunded", &*charge, now));
        self.refunds.insert(refund.id.clone(), refund.clone());
        Ok(refund)
    }

    /// Intents matching `query`, newest first: one page of `limit` after skipping `offset`, and
    /// whether more follow.
    pub fn search(
        &self,
        query: &SearchQuery,
        limit: usize,
        offset: usize,
    ) -> (Vec<PaymentIntent>, bool) {
        let mut matching = self
            .order
            .iter()
            .rev()
            .filter_map(|id| self.intents.get(id))
            .filter(|intent| query.matches(intent))
            .skip(offset);
        let page: Vec<PaymentIntent> = matching.by_ref().take(limit).cloned().collect();
        let more = matching.next().is_some();
        (page, more)
    }
}

impl SearchQuery {
    /// Parses Stripe's search syntax, the part of it that intents here can answer:
    /// `metadata['key']:'value'` and `status:'value'` clauses joined by `AND`.
    pub fn parse(query: &str) -> Result<Self, String> {
        let mut parser = Parser { rest: query.trim() };
        let mut clauses = vec![parser.clause()?];
        while !parser.rest.is_empty() {
            parser.keyword("AND")?;
            clauses.push(parser.clause()?);
        }
        Ok(Self(clauses))
    }

    fn matches(&self, intent: &PaymentIntent) -> bool {
        self.0.iter().all(|clause| match clause {
            Clause::Metadata(key, value) => intent.metadata.get(key) == Some(value),
            Clause::Status(status) => intent.status.as_str() == status,
        })
    }
}

struct Parser<'a> {
    rest: &'a str,
}

impl Parser<'_> {
    fn clause(&mut self) -> Result<Clause, String> {
        let clause = if let Some(rest) = self.rest.strip_prefix("metadata[") {
            self.rest = rest;
            let key = self.quoted()?;
            self.expect("]")?;
            self.expect(":")?;
            Clause::Metadata(key, self.quoted()?)
        } else if let Some(rest) = self.rest.strip_prefix("status:") {
            self.rest = rest;
            let status = self.quoted()?;
            if IntentStatus::parse(&status).is_none() {
                return Err(format!("'{status}' is not a PaymentIntent status."));
            }
            Clause::Status(status)
        } else {
            return Err(format!(
                "Unsupported search clause at '{}': use metadata['key']:'value' or status:'value'.",
                self.rest
            ));
        };
        self.rest = self.rest.trim_start();
        Ok(clause)
    }

    fn keyword(&mut self, word: &str) -> Result<(), String> {
        match self.rest.strip_prefix(word) {
            Some(rest) if rest.starts_with(' ') => {
                self.rest = rest.trim_start();
                Ok(())
            }
            _ => Err(format!(
                "Expected {word} between clauses at '{}' (only AND is supported).",
                self.rest
            )),
        }
    }

    fn expect(&mut self, token: &str) -> Result<(), String> {
        self.rest = self
            .rest
            .strip_prefix(token)
            .ok_or_else(|| format!("Expected '{token}' at '{}'.", self.rest))?;
        Ok(())
    }

    /// A string in single or double quotes; a backslash escapes the next character.
    fn quoted(&mut self) -> Result<String, String> {
        let mut chars = self.rest.char_indices();
        let quote = match chars.next() {
            Some((_, q @ ('\'' | '"'))) => q,
            _ => return Err(format!("Expected a quoted value at '{}'.", self.rest)),
        };
        let mut value = String::new();
        let mut escaped = false;
        for (i, c) in chars {
            if escaped {
                value.push(c);
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == quote {
                self.rest = &self.rest[i + c.len_utf8()..];
                return Ok(value);
            } else {
                value.push(c);
            }
        }
        Err(format!("Unterminated quoted value at '{}'.", self.rest))
    }
}

#[cfg(test)]
mod proptests;

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;

    fn new_intent(pm: &str, capture_method: CaptureMethod) -> NewIntent {
        NewIntent {
            amount: 1000,
            currency: "eur".into(),
            payment_method: Some(pm.into()),
            capture_method,
            confirm: true,
            description: None,
            metadata: Metadata::from([("order_id".to_owned(), "ORD-1".to_owned())]),
        }
    }

    fn authorized(ledger: &mut Ledger) -> PaymentIntent {
        ledger
            .create(new_intent("pm_card_visa", CaptureMethod::Manual), 1)
            .unwrap()
    }

    fn kinds(ledger: &mut Ledger) -> Vec<&'static str> {
        ledger.take_events().into_iter().map(|e| e.kind).collect()
    }

    #[test]
    fn a_manual_intent_waits_for_capture_and_captures_in_part() {
        let mut ledger = Ledger::new();
        let intent = authorized(&mut ledger);
        assert_eq!(intent.status, IntentStatus::RequiresCapture);
        assert_eq!(intent.amount_capturable, 1000);
        assert!(intent.latest_charge.is_some());
        assert_eq!(
            kinds(&mut ledger),
            ["payment_intent.amount_capturable_updated"]
        );

        let too_much = ledger.capture(&intent.id, Some(1001), 2).unwrap_err();
        assert_eq!(too_much.status, StatusCode::BAD_REQUEST);
        let captured = ledger.capture(&intent.id, Some(600), 2).unwrap();
        assert_eq!(captured.status, IntentStatus::Succeeded);
        assert_eq!(
            (captured.amount_received, captured.amount_capturable),
            (600, 0)
        );
        assert_eq!(kinds(&mut ledger), ["payment_intent.succeeded"]);
        let again = ledger.capture(&intent.id, None, 3).unwrap_err();
        assert_eq!(
            again.error.code.as_deref(),
            Some("payment_intent_unexpected_state")
        );
    }

    #[test]
    fn an_automatic_intent_succeeds_at_once() {
        let mut ledger = Ledger::new();
        let intent = ledger
            .create(
                new_intent("pm_card_mastercard", CaptureMethod::Automatic),
                1,
            )
            .unwrap();
        assert_eq!(intent.status, IntentStatus::Succeeded);
        assert_eq!(intent.amount_received, 1000);
        assert_eq!(kinds(&mut ledger), ["payment_intent.succeeded"]);
    }

    #[test]
    fn a_decline_is_402_and_leaves_the_intent_waiting_for_another_method() {
        let mut ledger = Ledger::new();
        let error = ledger
            .create(
                new_intent(
                    "pm_card_chargeDeclinedInsufficientFunds",
                    CaptureMethod::Manual,
                ),
                1,
            )
            .unwrap_err();
        assert_eq!(error.status, StatusCode::PAYMENT_REQUIRED);
        assert_eq!(error.error.kind, ErrorType::CardError);
        assert_eq!(
            error.error.decline_code.as_deref(),
            Some("insufficient_funds")
        );
        let intent = error.error.payment_intent.unwrap();
        assert_eq!(intent.status, IntentStatus::RequiresPaymentMethod);
        assert!(intent.last_payment_error.is_some());
        assert_eq!(ledger.intent(&intent.id).unwrap(), *intent);
        assert_eq!(kinds(&mut ledger), ["payment_intent.payment_failed"]);

        // Another method may be tried on the same intent.
        let retried = ledger
            .confirm(&intent.id, Some("pm_card_visa".into()), 2)
            .unwrap();
        assert_eq!(retried.status, IntentStatus::RequiresCapture);
        assert!(retried.last_payment_error.is_none());
    }

    #[test]
    fn cancel_only_before_payment() {
        let mut ledger = Ledger::new();
        let intent = authorized(&mut ledger);
        let canceled = ledger
            .cancel(&intent.id, Some("requested_by_customer".into()), 5)
            .unwrap();
        assert_eq!(canceled.status, IntentStatus::Canceled);
        assert_eq!(canceled.canceled_at, Some(5));
        assert_eq!(canceled.amount_capturable, 0);
        assert!(ledger.cancel(&intent.id, None, 6).is_err());
        assert!(ledger.capture(&intent.id, None, 6).is_err());

        let paid = authorized(&mut ledger);
        ledger.capture(&paid.id, None, 2).unwrap();
        let error = ledger.cancel(&paid.id, None, 3).unwrap_err();
        assert_eq!(
            error.error.code.as_deref(),
            Some("payment_intent_unexpected_state")
        );
    }

    #[test]
    fn refunds_never_exceed_what_was_received() {
        let mut ledger = Ledger::new();
        let intent = authorized(&mut ledger);
        let refund = |amount| NewRefund {
            payment_intent: intent.id.clone(),
            amount,
            reason: None,
            metadata: Metadata::new(),
        };
        let early = ledger.create_refund(refund(None), 1).unwrap_err();
        assert_eq!(
            early.error.code.as_deref(),
            Some("payment_intent_unexpected_state")
        );
        ledger.capture(&intent.id, Some(800), 2).unwrap();
        ledger.take_events();

        assert_eq!(
            ledger.create_refund(refund(Some(300)), 3).unwrap().amount,
            300
        );
        let too_much = ledger.create_refund(refund(Some(501)), 3).unwrap_err();
        assert_eq!(too_much.error.code.as_deref(), Some("amount_too_large"));
        assert_eq!(ledger.create_refund(refund(None), 4).unwrap().amount, 500);
        let none_left = ledger.create_refund(refund(Some(1)), 5).unwrap_err();
        assert_eq!(
            none_left.error.code.as_deref(),
            Some("charge_already_refunded")
        );
        let events = ledger.take_events();
        assert_eq!(events.len(), 2);
        assert_eq!(events[1].kind, "charge.refunded");
        assert_eq!(events[1].data.object["amount_refunded"], 800);
        assert_eq!(events[1].data.object["refunded"], true);
    }

    #[test]
    fn search_matches_every_clause_newest_first() {
        let mut ledger = Ledger::new();
        let first = authorized(&mut ledger);
        let second = authorized(&mut ledger);
        ledger.cancel(&first.id, None, 2).unwrap();
        let by_order = SearchQuery::parse("metadata['order_id']:'ORD-1'").unwrap();
        let (found, more) = ledger.search(&by_order, 10, 0);
        assert_eq!(
            found.iter().map(|i| &i.id).collect::<Vec<_>>(),
            [&second.id, &first.id]
        );
        assert!(!more);
        let (page, more) = ledger.search(&by_order, 1, 0);
        assert_eq!((page.len(), more), (1, true));

        let canceled =
            SearchQuery::parse(r#"metadata["order_id"]:"ORD-1" AND status:'canceled'"#).unwrap();
        let (found, _) = ledger.search(&canceled, 10, 0);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].id, first.id);
        let other = SearchQuery::parse("metadata['order_id']:'ORD-2'").unwrap();
        assert!(ledger.search(&other, 10, 0).0.is_empty());
    }

    #[test]
    fn search_queries_outside_the_supported_syntax_are_refused() {
        assert_eq!(
            SearchQuery::parse(r"metadata['k']:'it\'s'").unwrap(),
            SearchQuery(vec![Clause::Metadata("k".into(), "it's".into())])
        );
        for bad in [
            "",
            "amount>100",
            "metadata['k']:v",
            "metadata['k']:'v' OR status:'succeeded'",
            "metadata['k']:'v' AND",
            "status:'paid'",
            "metadata['k':'v'",
        ] {
            assert!(SearchQuery::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn unknown_payment_methods_are_not_test_cards() {
        assert_eq!(TestCard::lookup("pm_card_amex"), Some(TestCard::Succeeds));
        assert!(TestCard::lookup("pm_card_unknown").is_none());
    }
}
