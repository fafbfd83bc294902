"""Contains all the data models used in inputs/outputs"""

from .attempt_read import AttemptRead
from .baseline_note import BaselineNote
from .body_upload_dataset import BodyUploadDataset
from .body_upload_model import BodyUploadModel
from .calibration_inputs import CalibrationInputs
from .candidate_figures import CandidateFigures
from .candidate_result import CandidateResult
from .candidate_result_recipe import CandidateResultRecipe
from .candidate_result_status import CandidateResultStatus
from .compressed_model import CompressedModel
from .compressed_model_dtypes import CompressedModelDtypes
from .compression_report import CompressionReport
from .dataset_inspection import DatasetInspection
from .dataset_inspection_tensors_type_0 import DatasetInspectionTensorsType0
from .dataset_read import DatasetRead
from .dataset_read_labels import DatasetReadLabels
from .dataset_read_status import DatasetReadStatus
from .dataset_tensor import DatasetTensor
from .decode_figures import DecodeFigures
from .delivered_artifact import DeliveredArtifact
from .delivery_read import DeliveryRead
from .distillation_config import DistillationConfig
from .distillation_config_optimizer import DistillationConfigOptimizer
from .distillation_config_student import DistillationConfigStudent
from .event_type import EventType
from .fidelity import Fidelity
from .fidelity_inputs import FidelityInputs
from .generation_figures import GenerationFigures
from .goal import Goal
from .goal_objective import GoalObjective
from .goal_techniques_type_0_item import GoalTechniquesType0Item
from .healthz_response_healthz import HealthzResponseHealthz
from .job_create import JobCreate
from .job_create_labels import JobCreateLabels
from .job_data import JobData
from .job_figures import JobFigures
from .job_phases import JobPhases
from .job_read import JobRead
from .job_read_data import JobReadData
from .job_read_labels import JobReadLabels
from .job_report import JobReport
from .job_status import JobStatus
from .llm_report import LLMReport
from .low_rank_config import LowRankConfig
from .low_rank_config_conv import LowRankConfigConv
from .low_rank_config_rank_by import LowRankConfigRankBy
from .measurement import Measurement
from .memory_figures import MemoryFigures
from .mlflow_registered import MlflowRegistered
from .mlflow_registration import MlflowRegistration
from .model_inspection import ModelInspection
from .model_inspection_architecture_args_type_0 import ModelInspectionArchitectureArgsType0
from .model_inspection_converted_from_type_0 import ModelInspectionConvertedFromType0
from .model_inspection_dtypes_type_0 import ModelInspectionDtypesType0
from .model_inspection_opsets_type_0 import ModelInspectionOpsetsType0
from .model_inspection_torch_conversion_type_0 import ModelInspectionTorchConversionType0
from .model_inspection_weight_ops_type_0 import ModelInspectionWeightOpsType0
from .model_inspection_weights_check_type_0 import ModelInspectionWeightsCheckType0
from .model_job_result import ModelJobResult
from .model_read import ModelRead
from .model_read_labels import ModelReadLabels
from .model_read_status import ModelReadStatus
from .nm_sparsity_config import NMSparsityConfig
from .original_figures import OriginalFigures
from .original_model import OriginalModel
from .original_model_dtypes import OriginalModelDtypes
from .packed_archive import PackedArchive
from .page_dataset_read import PageDatasetRead
from .page_delivery_read import PageDeliveryRead
from .page_job_read import PageJobRead
from .page_model_job_result import PageModelJobResult
from .page_model_read import PageModelRead
from .page_webhook_read import PageWebhookRead
from .perplexity_figures import PerplexityFigures
from .phase_seconds import PhaseSeconds
from .problem import Problem
from .pruning_config import PruningConfig
from .pruning_config_scope import PruningConfigScope
from .quantization_config import QuantizationConfig
from .quantization_config_calibration_method import QuantizationConfigCalibrationMethod
from .quantization_config_embedding_bits import QuantizationConfigEmbeddingBits
from .quantization_config_group_size_type_0 import QuantizationConfigGroupSizeType0
from .quantization_config_method import QuantizationConfigMethod
from .quantization_config_scheme import QuantizationConfigScheme
from .quantization_config_small_table_bits import QuantizationConfigSmallTableBits
from .quantization_config_weight_dtype import QuantizationConfigWeightDtype
from .ran_on import RanOn
from .ran_on_device import RanOnDevice
from .ran_on_runtime import RanOnRuntime
from .ran_on_timer import RanOnTimer
from .ran_on_training_device import RanOnTrainingDevice
from .recipe import Recipe
from .registered import Registered
from .registration import Registration
from .scaling_figures import ScalingFigures
from .search_report import SearchReport
from .search_report_stopped_by import SearchReportStoppedBy
from .step_report import StepReport
from .structured_pruning_config import StructuredPruningConfig
from .structured_pruning_config_importance import StructuredPruningConfigImportance
from .target import Target
from .target_device import TargetDevice
from .target_runtime import TargetRuntime
from .tenant_share_read import TenantShareRead
from .tenant_share_read_source import TenantShareReadSource
from .tenant_share_write import TenantShareWrite
from .tensor_spec import TensorSpec
from .training_config import TrainingConfig
from .training_config_optimizer import TrainingConfigOptimizer
from .validation_issue import ValidationIssue
from .webhook_create import WebhookCreate
from .webhook_created import WebhookCreated
from .webhook_read import WebhookRead
from .weight_sharing_config import WeightSharingConfig
from .worker_read import WorkerRead

__all__ = (
    "AttemptRead",
    "BaselineNote",
    "BodyUploadDataset",
    "BodyUploadModel",
    "CalibrationInputs",
    "CandidateFigures",
    "CandidateResult",
    "CandidateResultRecipe",
    "CandidateResultStatus",
    "CompressedModel",
    "CompressedModelDtypes",
    "CompressionReport",
    "DatasetInspection",
    "DatasetInspectionTensorsType0",
    "DatasetRead",
    "DatasetReadLabels",
    "DatasetReadStatus",
    "DatasetTensor",
    "DecodeFigures",
    "DeliveredArtifact",
    "DeliveryRead",
    "DistillationConfig",
    "DistillationConfigOptimizer",
    "DistillationConfigStudent",
    "EventType",
    "Fidelity",
    "FidelityInputs",
    "GenerationFigures",
    "Goal",
    "GoalObjective",
    "GoalTechniquesType0Item",
    "HealthzResponseHealthz",
    "JobCreate",
    "JobCreateLabels",
    "JobData",
    "JobFigures",
    "JobPhases",
    "JobRead",
    "JobReadData",
    "JobReadLabels",
    "JobReport",
    "JobStatus",
    "LLMReport",
    "LowRankConfig",
    "LowRankConfigConv",
    "LowRankConfigRankBy",
    "Measurement",
    "MemoryFigures",
    "MlflowRegistered",
    "MlflowRegistration",
    "ModelInspection",
    "ModelInspectionArchitectureArgsType0",
    "ModelInspectionConvertedFromType0",
    "ModelInspectionDtypesType0",
    "ModelInspectionOpsetsType0",
    "ModelInspectionTorchConversionType0",
    "ModelInspectionWeightOpsType0",
    "ModelInspectionWeightsCheckType0",
    "ModelJobResult",
    "ModelRead",
    "ModelReadLabels",
    "ModelReadStatus",
    "NMSparsityConfig",
    "OriginalFigures",
    "OriginalModel",
    "OriginalModelDtypes",
    "PackedArchive",
    "PageDatasetRead",
    "PageDeliveryRead",
    "PageJobRead",
    "PageModelJobResult",
    "PageModelRead",
    "PageWebhookRead",
    "PerplexityFigures",
    "PhaseSeconds",
    "Problem",
    "PruningConfig",
    "PruningConfigScope",
    "QuantizationConfig",
    "QuantizationConfigCalibrationMethod",
    "QuantizationConfigEmbeddingBits",
    "QuantizationConfigGroupSizeType0",
    "QuantizationConfigMethod",
    "QuantizationConfigScheme",
    "QuantizationConfigSmallTableBits",
    "QuantizationConfigWeightDtype",
    "RanOn",
    "RanOnDevice",
    "RanOnRuntime",
    "RanOnTimer",
    "RanOnTrainingDevice",
    "Recipe",
    "Registered",
    "Registration",
    "ScalingFigures",
    "SearchReport",
    "SearchReportStoppedBy",
    "StepReport",
    "StructuredPruningConfig",
    "StructuredPruningConfigImportance",
    "Target",
    "TargetDevice",
    "TargetRuntime",
    "TenantShareRead",
    "TenantShareReadSource",
    "TenantShareWrite",
    "TensorSpec",
    "TrainingConfig",
    "TrainingConfigOptimizer",
    "ValidationIssue",
    "WebhookCreate",
    "WebhookCreated",
    "WebhookRead",
    "WeightSharingConfig",
    "WorkerRead",
)
