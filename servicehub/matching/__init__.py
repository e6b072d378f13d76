"""Matching (供需对接): needs to contracted organisations — rules, scores, district-wide assignment, referrals."""
