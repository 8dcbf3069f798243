"""/api/token/: a token for a username and password, replaced once it expires; and rotation."""

from django.db import transaction
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.authtoken.models import Token
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from .authentication import token_expired

TokenAnswer = inline_serializer("TokenAnswer", {"token": serializers.CharField()})


def token_fresh(user, *, rotate: bool = False) -> Token:
    """The user's token; a new one when asked to rotate or when the old one has expired."""
    with transaction.atomic():
        token = Token.objects.select_for_update().filter(user=user).first()
        if token is not None and (rotate or token_expired(token)):
            token.delete()
            token = None
        return token or Token.objects.create(user=user)


class TokenObtain(ObtainAuthToken):
    """POST username and password; the answer is `{"token": ...}` (send it as `Authorization: Token ...`)."""

    throttle_classes = [ScopedRateThrottle]  # ObtainAuthToken has none
    throttle_scope = "token"

    @extend_schema(responses={200: TokenAnswer})
    def post(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return Response({"token": token_fresh(serializer.validated_data["user"]).key})


class TokenRotate(APIView):
    """POST (authenticated): the current token stops working and a new one is answered."""

    permission_classes = [IsAuthenticated]
    throttle_scope = "token"

    @extend_schema(request=None, responses={201: TokenAnswer})
    def post(self, request):
        return Response({"token": token_fresh(request.user, rotate=True).key}, status=status.HTTP_201_CREATED)
