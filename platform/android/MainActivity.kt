// Doorstep's Android glue: the activity, the calls the Rust side makes over JNI, and the visit timer's
// foreground service.
//
// dx 0.7.10 copies this one file (Dioxus.toml: [application] android_main_activity) to
// app/src/main/kotlin/dev/dioxus/main/MainActivity.kt, so everything native lives here, in the package
// wry's WryActivity is generated in. The Rust side is src/platform/android.rs; the manifest that declares
// VisitTimerService and the permissions is platform/android/AndroidManifest.xml.
//
// Every string shown to the user arrives from Rust (src/platform/notice.rs), where the wording is fixed and
// says nothing about a family: this file never builds notification text of its own.
//
// The phone's data key (what seals its database, credential and PINs: src/vault.rs) is 32 random bytes kept
// wrapped by an AES-256-GCM key that never leaves the Android Keystore (in the phone's secure hardware where
// it has some). The wrapped key lives in noBackupFilesDir, and a Keystore key cannot be copied to another
// phone, so a copy of the app's files elsewhere cannot be opened.
package dev.dioxus.main

import android.Manifest
import android.app.Activity
import android.app.Notification
import android.app.NotificationChannel
import android.app.NotificationManager
import android.app.PendingIntent
import android.app.Service
import android.content.ActivityNotFoundException
import android.content.Context
import android.content.Intent
import android.content.pm.PackageManager
import android.content.pm.ServiceInfo
import android.media.AudioAttributes
import android.media.RingtoneManager
import android.net.Uri
import android.os.Build
import android.os.Bundle
import android.os.IBinder
import android.os.VibrationEffect
import android.os.Vibrator
import android.os.VibratorManager
import android.security.keystore.KeyGenParameterSpec
import android.security.keystore.KeyProperties
import android.security.keystore.StrongBoxUnavailableException
import android.util.Log
import android.view.WindowManager
import java.io.File
import java.security.KeyStore
import java.security.SecureRandom
import javax.crypto.Cipher
import javax.crypto.KeyGenerator
import javax.crypto.SecretKey
import javax.crypto.spec.GCMParameterSpec

typealias BuildConfig = uk.org.doorstep.app.BuildConfig

class MainActivity : WryActivity() {
    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        // Every screen may show a pupil's name, an address or a briefing: none may be captured in a
        // screenshot, a screen recording or the recent-apps thumbnail.
        window.setFlags(WindowManager.LayoutParams.FLAG_SECURE, WindowManager.LayoutParams.FLAG_SECURE)
        // Asked once at start, not in the middle of a visit: a permission dialog on a doorstep is the
        // wrong moment, and without it Android 13+ shows no check-in reminder at all.
        DoorstepPlatform.askForNotifications(this)
    }
}

/** The calls src/platform/android.rs makes. All run on the UI thread (wry's dispatch). */
object DoorstepPlatform {
    private const val TAG = "Doorstep"
    private const val REMINDERS = "doorstep_reminders"
    private const val VISIT_TIMER = "doorstep_visit_timer"
    private const val NOTIFICATION_REQUEST = 7301

    @JvmStatic
    fun askForNotifications(activity: Activity) {
        if (Build.VERSION.SDK_INT >= 33 &&
            activity.checkSelfPermission(Manifest.permission.POST_NOTIFICATIONS) !=
            PackageManager.PERMISSION_GRANTED
        ) {
            activity.requestPermissions(arrayOf(Manifest.permission.POST_NOTIFICATIONS), NOTIFICATION_REQUEST)
        }
    }

    /** Channels exist from Android 8 (our minSdk 26); creating one twice is a no-op. */
    @JvmStatic
    fun ensureChannels(context: Context) {
        val manager = context.getSystemService(NotificationManager::class.java)
        val reminders = NotificationChannel(REMINDERS, "Check-in reminders", NotificationManager.IMPORTANCE_HIGH)
        // The text is fixed and discreet, so it may show in full on the lock screen: staff read
        // "time to check in" without unlocking in front of the family.
        reminders.lockscreenVisibility = Notification.VISIBILITY_PUBLIC
        manager.createNotificationChannel(reminders)
        val timer = NotificationChannel(VISIT_TIMER, "Visit timer", NotificationManager.IMPORTANCE_LOW)
        timer.lockscreenVisibility = Notification.VISIBILITY_PUBLIC
        timer.setShowBadge(false)
        manager.createNotificationChannel(timer)
    }

    /**
     * Always an ordinary reminder (category REMINDER, never ALARM): it may be seen in a family's living room.
     * The channel's own sound follows the phone's silent mode.
     */
    @JvmStatic
    fun notify(context: Context, id: Int, title: String, body: String) {
        if (Build.VERSION.SDK_INT >= 33 &&
            context.checkSelfPermission(Manifest.permission.POST_NOTIFICATIONS) !=
            PackageManager.PERMISSION_GRANTED
        ) {
            Log.w(TAG, "notification permission not granted; reminder not shown")
            return
        }
        ensureChannels(context)
        val notification = Notification.Builder(context, REMINDERS)
            .setSmallIcon(android.R.drawable.ic_popup_reminder)
            .setContentTitle(title)
            .setContentText(body)
            .setVisibility(Notification.VISIBILITY_PUBLIC)
            .setCategory(Notification.CATEGORY_REMINDER)
            .setContentIntent(openApp(context))
            .setAutoCancel(true)
            .build()
        context.getSystemService(NotificationManager::class.java).notify(id, notification)
    }

    @JvmStatic
    fun vibrate(context: Context, timings: LongArray) {
        val vibrator: Vibrator = if (Build.VERSION.SDK_INT >= 31) {
            context.getSystemService(VibratorManager::class.java).defaultVibrator
        } else {
            @Suppress("DEPRECATION")
            context.getSystemService(Context.VIBRATOR_SERVICE) as Vibrator
        }
        if (!vibrator.hasVibrator()) return
        vibrator.vibrate(VibrationEffect.createWaveform(timings, -1))
    }

    /**
     * urgent: the alarm stream, which plays through silent mode. Rust asks for it only for a late check-in
     * the staff member chose to hear (the phone's settings; off unless turned on).
     */
    @JvmStatic
    fun playAlertSound(context: Context, urgent: Boolean) {
        val type = if (urgent) RingtoneManager.TYPE_ALARM else RingtoneManager.TYPE_NOTIFICATION
        val ringtone = RingtoneManager.getRingtone(context, RingtoneManager.getDefaultUri(type)) ?: return
        ringtone.audioAttributes = AudioAttributes.Builder()
            .setUsage(if (urgent) AudioAttributes.USAGE_ALARM else AudioAttributes.USAGE_NOTIFICATION)
            .build()
        ringtone.play()
    }

    /** ACTION_DIAL fills in the number and lets the user press call: no CALL_PHONE permission. */
    @JvmStatic
    fun openDialler(context: Context, uri: String) {
        startActivity(context, Intent(Intent.ACTION_DIAL, Uri.parse(uri)))
    }

    /** ACTION_SENDTO opens only messaging apps; sms_body is the extra most of them read. */
    @JvmStatic
    fun openSms(context: Context, uri: String, body: String) {
        val intent = Intent(Intent.ACTION_SENDTO, Uri.parse(uri))
        if (body.isNotEmpty()) intent.putExtra("sms_body", body)
        startActivity(context, intent)
    }

    @JvmStatic
    fun startVisitTimer(context: Context, title: String, body: String) {
        ensureChannels(context)
        val intent = Intent(context, VisitTimerService::class.java)
            .putExtra(VisitTimerService.TITLE, title)
            .putExtra(VisitTimerService.BODY, body)
        context.startForegroundService(intent)
    }

    @JvmStatic
    fun stopVisitTimer(context: Context) {
        context.stopService(Intent(context, VisitTimerService::class.java))
    }

    private const val KEYSTORE = "AndroidKeyStore"
    private const val WRAPPING_KEY = "doorstep-data-key-wrapper"
    private const val WRAPPED_KEY_FILE = "doorstep-data-key.wrapped"
    private const val GCM_IV_BYTES = 12

    /**
     * The phone's 32-byte data key, unwrapped with the Keystore's AES key; null when there is none. With
     * create, a new data key (and a new wrapping key) replaces any old one. Called from Rust off the UI
     * thread's own work (it waits for this answer).
     */
    @JvmStatic
    fun dataKey(context: Context, create: Boolean): ByteArray? {
        val keystore = KeyStore.getInstance(KEYSTORE).apply { load(null) }
        val wrapped = File(context.noBackupFilesDir, WRAPPED_KEY_FILE)
        if (create) {
            deleteDataKey(context)
            val wrapping = newWrappingKey()
            val dataKey = ByteArray(32).also { SecureRandom().nextBytes(it) }
            val cipher = Cipher.getInstance("AES/GCM/NoPadding")
            cipher.init(Cipher.ENCRYPT_MODE, wrapping)
            val sealed = cipher.iv + cipher.doFinal(dataKey)
            val fresh = File(wrapped.path + ".new")
            fresh.writeBytes(sealed)
            if (!fresh.renameTo(wrapped)) throw IllegalStateException("could not keep the wrapped data key")
            return dataKey
        }
        if (!wrapped.exists() || !keystore.containsAlias(WRAPPING_KEY)) return null
        val wrapping = keystore.getKey(WRAPPING_KEY, null) as SecretKey
        val sealed = wrapped.readBytes()
        val cipher = Cipher.getInstance("AES/GCM/NoPadding")
        cipher.init(Cipher.DECRYPT_MODE, wrapping, GCMParameterSpec(128, sealed, 0, GCM_IV_BYTES))
        return cipher.doFinal(sealed, GCM_IV_BYTES, sealed.size - GCM_IV_BYTES)
    }

    /** Forgets the data key: without it, nothing the phone sealed can be read again. */
    @JvmStatic
    fun deleteDataKey(context: Context) {
        File(context.noBackupFilesDir, WRAPPED_KEY_FILE).delete()
        val keystore = KeyStore.getInstance(KEYSTORE).apply { load(null) }
        if (keystore.containsAlias(WRAPPING_KEY)) keystore.deleteEntry(WRAPPING_KEY)
    }

    /** An AES-256-GCM key in the Keystore, in StrongBox where the phone has it. */
    private fun newWrappingKey(): SecretKey {
        fun generate(strongBox: Boolean): SecretKey {
            val spec = KeyGenParameterSpec.Builder(
                WRAPPING_KEY,
                KeyProperties.PURPOSE_ENCRYPT or KeyProperties.PURPOSE_DECRYPT,
            )
                .setBlockModes(KeyProperties.BLOCK_MODE_GCM)
                .setEncryptionPaddings(KeyProperties.ENCRYPTION_PADDING_NONE)
                .setKeySize(256)
            if (strongBox && Build.VERSION.SDK_INT >= 28) spec.setIsStrongBoxBacked(true)
            val generator = KeyGenerator.getInstance(KeyProperties.KEY_ALGORITHM_AES, KEYSTORE)
            generator.init(spec.build())
            return generator.generateKey()
        }
        return try {
            generate(strongBox = true)
        } catch (error: StrongBoxUnavailableException) {
            generate(strongBox = false)
        }
    }

    internal fun visitTimerChannel(): String = VISIT_TIMER

    internal fun openApp(context: Context): PendingIntent {
        val intent = Intent(context, MainActivity::class.java)
            .addFlags(Intent.FLAG_ACTIVITY_SINGLE_TOP or Intent.FLAG_ACTIVITY_CLEAR_TOP)
        return PendingIntent.getActivity(context, 0, intent, PendingIntent.FLAG_IMMUTABLE)
    }

    private fun startActivity(context: Context, intent: Intent) {
        if (context !is Activity) intent.addFlags(Intent.FLAG_ACTIVITY_NEW_TASK)
        try {
            context.startActivity(intent)
        } catch (error: ActivityNotFoundException) {
            // A tablet without telephony: the Rust side cannot hear this, so say it in logcat.
            Log.w(TAG, "no app to handle ${intent.action}")
        }
    }
}

/**
 * Keeps the app alive while a visit is in progress, so check-in reminders still fire with the screen off.
 * Declared in platform/android/AndroidManifest.xml with foregroundServiceType="specialUse": no other type
 * fits a safety timer, and shortService stops after about three minutes.
 */
class VisitTimerService : Service() {
    companion object {
        const val TITLE = "title"
        const val BODY = "body"
        private const val NOTIFICATION_ID = 4 // Notice::VisitTimerRunning.id() in src/platform/notice.rs
    }

    override fun onBind(intent: Intent?): IBinder? = null

    override fun onStartCommand(intent: Intent?, flags: Int, startId: Int): Int {
        val notification = Notification.Builder(this, DoorstepPlatform.visitTimerChannel())
            .setSmallIcon(android.R.drawable.ic_lock_idle_alarm)
            .setContentTitle(intent?.getStringExtra(TITLE) ?: "Doorstep")
            .setContentText(intent?.getStringExtra(BODY) ?: "")
            .setVisibility(Notification.VISIBILITY_PUBLIC)
            .setOngoing(true)
            .setContentIntent(DoorstepPlatform.openApp(this))
            .build()
        if (Build.VERSION.SDK_INT >= 34) {
            startForeground(NOTIFICATION_ID, notification, ServiceInfo.FOREGROUND_SERVICE_TYPE_SPECIAL_USE)
        } else {
            startForeground(NOTIFICATION_ID, notification)
        }
        // Not sticky: if Android kills the app, a restarted service without the app would remind nobody of
        // anything. The office holds the deadlines and notices the silence.
        return START_NOT_STICKY
    }
}
