from __future__ import annotations

from app.models_upload import service
from app.models_upload.schemas import ModelRead
from app.upload_routes import UploadResource, upload_router

router = upload_router(
    UploadResource(
        noun="model",
        read=ModelRead,
        summary="Upload a model (multipart field 'file')",
        description=(
            "Cheap checks run here (pickles, executable formats, archive escapes and bombs, "
            "unknown formats: 422, nothing kept). The stored upload is then `pending` until a "
            "worker has unpacked and inspected it: `ready` with the inspection, or `rejected` "
            "with `rejection_reason`. Jobs need a ready model (409 with Retry-After while pending)."
        ),
        upload=service.upload_model,
        list_page=service.list_models,
        get=service.get_model,
        delete=service.delete_model,
    )
)
