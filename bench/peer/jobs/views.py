"""POST /task calls `.delay()`; GET /result/<id> reads `AsyncResult(id)`. Nothing else."""

from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from .tasks import run


class SubmitSerializer(serializers.Serializer):
    x = serializers.JSONField()


class SubmitView(APIView):
    def post(self, request):
        serializer = SubmitSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        result = run.delay(serializer.validated_data["x"])
        return Response({"task_id": result.id}, status=status.HTTP_202_ACCEPTED)


class ResultView(APIView):
    def get(self, request, task_id):
        result = run.AsyncResult(str(task_id))
        state = result.state  # one query: django-celery-results' row, PENDING without one
        return Response(
            {
                "task_id": str(task_id),
                "task_status": state,
                "task_result": result.result if state == "SUCCESS" else None,
            }
        )
