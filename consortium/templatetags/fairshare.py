"""Template tags of every page: the consortium menu for the signed-in user."""

from django import template

from consortium.access import principal_for
from consortium.navigation import consortium_nav

register = template.Library()


@register.inclusion_tag("partials/nav.html", takes_context=True)
def consortium_menu(context, consortium):
    request = context["request"]
    principal = principal_for(request)
    return {"consortium": consortium, "items": consortium_nav(principal=principal, consortium=consortium,
                                                              path=request.path),
            "role": principal.role_in(consortium)}
