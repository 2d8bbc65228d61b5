//! Webhook signature schemes, delivery ids and record extraction per provider.
