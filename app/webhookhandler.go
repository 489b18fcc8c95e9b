package app

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/latchkey/latchkey/internal/httpapi"
)

// WebhookHandler serves /v1/apps/{app}/webhooks.
type WebhookHandler struct {
	apps  *Store
	hooks *Webhooks
}

// NewWebhookHandler returns a WebhookHandler.
func NewWebhookHandler(apps *Store, hooks *Webhooks) *WebhookHandler {
	return &WebhookHandler{apps: apps, hooks: hooks}
}

// Register adds the routes to g, which must be behind RequireKey.
func (h *WebhookHandler) Register(g *echo.Group) {
	g.GET("/apps/:app/webhooks", h.list)
	g.POST("/apps/:app/webhooks", h.create)
	g.GET("/apps/:app/webhooks/:webhook", h.get)
	g.DELETE("/apps/:app/webhooks/:webhook", h.delete)
	g.GET("/apps/:app/webhooks/:webhook/deliveries", h.deliveries)
}

type webhookRequest struct {
	URL    string   `json:"url"`
	Events []string `json:"events"`
}

type webhookResponse struct {
	ID        string    `json:"id"`
	AppID     string    `json:"app_id"`
	URL       string    `json:"url"`
	Events    []string  `json:"events"`
	Secret    string    `json:"secret,omitempty"` // only when created
	CreatedAt time.Time `json:"created_at"`
}

func toWebhookResponse(w Webhook) webhookResponse {
	return webhookResponse{ID: w.ID, AppID: w.AppID, URL: w.URL, Events: w.Events, CreatedAt: w.CreatedAt}
}

type deliveryResponse struct {
	ID            string     `json:"id"`
	Event         string     `json:"event"`
	Attempts      int        `json:"attempts"`
	NextAttemptAt time.Time  `json:"next_attempt_at"`
	DeliveredAt   *time.Time `json:"delivered_at"`
	FailedAt      *time.Time `json:"failed_at"`
	LastStatus    int        `json:"last_status"`
	LastError     string     `json:"last_error"`
	CreatedAt     time.Time  `json:"created_at"`
}

func (h *WebhookHandler) findApp(c echo.Context) (App, error) {
	ref, err := httpapi.Param(c, "app")
	if err != nil {
		return App{}, err
	}
	return h.apps.Find(c.Request().Context(), AccountID(c), ref)
}

func (h *WebhookHandler) findWebhook(c echo.Context) (Webhook, error) {
	a, err := h.findApp(c)
	if err != nil {
		return Webhook{}, err
	}
	id, err := httpapi.Param(c, "webhook")
	if err != nil {
		return Webhook{}, err
	}
	return h.hooks.Find(c.Request().Context(), a.ID, id)
}

func (h *WebhookHandler) list(c echo.Context) error {
	a, err := h.findApp(c)
	if err != nil {
		return err
	}
	hooks, err := h.hooks.List(c.Request().Context(), a.ID)
	if err != nil {
		return err
	}
	out := make([]webhookResponse, len(hooks))
	for i, w := range hooks {
		out[i] = toWebhookResponse(w)
	}
	return c.JSON(http.StatusOK, map[string]any{"webhooks": out})
}

func (h *WebhookHandler) create(c echo.Context) error {
	a, err := h.findApp(c)
	if err != nil {
		return err
	}
	var req webhookRequest
	if err := httpapi.Bind(c, &req); err != nil {
		return err
	}
	w := Webhook{AppID: a.ID, URL: req.URL, Events: req.Events}
	secret, err := h.hooks.Create(c.Request().Context(), &w)
	if err != nil {
		return err
	}
	out := toWebhookResponse(w)
	out.Secret = secret
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusCreated, out)
}

func (h *WebhookHandler) get(c echo.Context) error {
	w, err := h.findWebhook(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toWebhookResponse(w))
}

func (h *WebhookHandler) delete(c echo.Context) error {
	w, err := h.findWebhook(c)
	if err != nil {
		return err
	}
	if err := h.hooks.Delete(c.Request().Context(), w.AppID, w.ID); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (h *WebhookHandler) deliveries(c echo.Context) error {
	w, err := h.findWebhook(c)
	if err != nil {
		return err
	}
	ds, err := h.hooks.Deliveries(c.Request().Context(), w.ID)
	if err != nil {
		return err
	}
	out := make([]deliveryResponse, len(ds))
	for i, d := range ds {
		out[i] = deliveryResponse{ID: d.ID, Event: d.Event, Attempts: d.Attempts, NextAttemptAt: d.NextAttemptAt,
			DeliveredAt: d.DeliveredAt, FailedAt: d.FailedAt, LastStatus: d.LastStatus, LastError: d.LastError, CreatedAt: d.CreatedAt}
	}
	return c.JSON(http.StatusOK, map[string]any{"deliveries": out})
}
