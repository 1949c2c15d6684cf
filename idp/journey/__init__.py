"""The sign-in journey: one owner for what a sign-in has proved and what it needs next."""
