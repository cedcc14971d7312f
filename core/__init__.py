"""The ground floor every app stands on: errors, the checks of outside values, short-lived caches and
generic SQL helpers. It knows no app's models (README, Architecture)."""
