"""Scheduled jobs (APScheduler 3): late and missed visits every few minutes, visit generation nightly."""
