"""The web shell: layout, navigation, sign-in, language switch, dashboards and static assets."""
