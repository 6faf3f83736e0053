"""BiodiversityASSET batch dashboard: the router (page config, navigation, shared sidebar)."""

from pages._shared import route

route()
