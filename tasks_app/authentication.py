"""Token authentication that loads the user's weight in the same query."""

from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication
from rest_framework.authtoken.models import Token


class ProfileTokenAuthentication(TokenAuthentication):
    """DRF's token authentication, joining the weight row to save a query per submission."""

    def authenticate_credentials(self, key):
        """Return (user, token) for a valid key, with user.profile already loaded."""
        try:
            token = Token.objects.select_related("user__profile").get(key=key)
        except Token.DoesNotExist:
            raise exceptions.AuthenticationFailed(_("Invalid token.")) from None
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        return (token.user, token)
