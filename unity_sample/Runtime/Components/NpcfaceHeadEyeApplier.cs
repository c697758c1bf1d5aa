// Turns the head and eye bones from the face's pose every LateUpdate. Rotations are applied in
// the character's own frame (characterRoot: +Z forward, +Y up), so bone axis conventions of the
// rig do not matter. npcface: yaw + = the character's left, pitch + = up, roll + = toward its
// left shoulder; gaze is relative to the head.
using Npcface.Client;
using UnityEngine;

namespace Npcface.Unity
{
    [AddComponentMenu("npcface/Npcface Head And Eye Applier")]
    public sealed class NpcfaceHeadEyeApplier : MonoBehaviour
    {
        public NpcfaceFace face;
        [Tooltip("The character's root, facing +Z (default: this transform).")]
        public Transform characterRoot;
        [Tooltip("Bones; left empty on a humanoid, they come from the Animator.")]
        public Transform head, leftEye, rightEye;
        [Range(0f, 2f)] public float headWeight = 1f;
        [Range(0f, 2f)] public float eyeWeight = 1f;
        [Tooltip("On: add to the pose the Animator wrote this frame. Off: add to the rest pose captured at Start.")]
        public bool onTopOfAnimation = false;

        Quaternion headRest, leftEyeRest, rightEyeRest;

        void Start()
        {
            if (face == null)
                face = GetComponentInParent<NpcfaceFace>();
            if (characterRoot == null)
                characterRoot = transform;
            Animator animator = GetComponentInChildren<Animator>();
            if (animator != null && animator.isHuman)
            {
                if (head == null) head = animator.GetBoneTransform(HumanBodyBones.Head);
                if (leftEye == null) leftEye = animator.GetBoneTransform(HumanBodyBones.LeftEye);
                if (rightEye == null) rightEye = animator.GetBoneTransform(HumanBodyBones.RightEye);
            }
            if (head != null) headRest = head.localRotation;
            if (leftEye != null) leftEyeRest = leftEye.localRotation;
            if (rightEye != null) rightEyeRest = rightEye.localRotation;
        }

        void LateUpdate()
        {
            if (face == null || !face.HasPose)
                return;
            FacePose pose = face.Pose;
            Quaternion root = characterRoot.rotation;
            Quaternion headTurn = InCharacterFrame(pose.HeadRotation[0], pose.HeadRotation[1], pose.HeadRotation[2], headWeight);
            if (head != null)
                Turn(head, headRest, root * headTurn * Quaternion.Inverse(root));
            // Gaze turns about the axes of the turned head.
            Quaternion faceFrame = root * headTurn;
            if (leftEye != null)
                Turn(leftEye, leftEyeRest, faceFrame * InCharacterFrame(pose.GazeLeft[0], pose.GazeLeft[1], 0f, eyeWeight) * Quaternion.Inverse(faceFrame));
            if (rightEye != null)
                Turn(rightEye, rightEyeRest, faceFrame * InCharacterFrame(pose.GazeRight[0], pose.GazeRight[1], 0f, eyeWeight) * Quaternion.Inverse(faceFrame));
        }

        /// <summary>npcface angles as a rotation in a +Z-forward, +Y-up, left-handed (Unity) frame.</summary>
        public static Quaternion InCharacterFrame(float yaw, float pitch, float roll, float weight)
        {
            // Unity: +Y turns toward the character's right, +X tilts the chin down, +Z tilts the top left.
            return Quaternion.Euler(-pitch * weight, -yaw * weight, roll * weight);
        }

        void Turn(Transform bone, Quaternion restLocal, Quaternion worldTurn)
        {
            Quaternion from = onTopOfAnimation ? bone.rotation
                            : (bone.parent != null ? bone.parent.rotation * restLocal : restLocal);
            bone.rotation = worldTurn * from;
        }
    }
}
