-- A concert may limit the tickets one fan buys (held and paid seats of all the fan's sessions together); NULL
-- is no limit. HoldSeat enforces it under the fan's row lock, so no two holds of one fan can both pass it.
ALTER TABLE concerts ADD COLUMN max_tickets_per_user INT CHECK (max_tickets_per_user > 0);
CREATE INDEX payments_user_concert ON payments (user_uuid, concert_code);
